"""mmext.engine.launch: the end of a distributed run."""
import subprocess
import sys

import torch.distributed as dist

from mmext.engine import finish_distributed
from tests.tool_runner import ROOT

# One rank: join a 2-process gloo group, all-reduce, finish_distributed(), then
# create a second default group, which torch refuses while the first still exists.
RANK = '''
import sys, torch, torch.distributed as dist
from mmext.engine import finish_distributed
rank, store = int(sys.argv[1]), sys.argv[2]
def init(name):
    dist.init_process_group('gloo', init_method=f'file://{store}/{name}',
                            rank=rank, world_size=2)
init('first')
total = torch.ones(1)
dist.all_reduce(total)
assert total.item() == 2
finish_distributed()
destroyed = not dist.is_initialized()
init('second')
finish_distributed()
print(f'rank {rank}: destroyed={destroyed} after_second={dist.is_initialized()}')
'''


def test_finish_distributed_outside_a_distributed_run_is_a_noop():
    assert not dist.is_initialized()
    finish_distributed()
    assert not dist.is_initialized()


def test_finish_distributed_destroys_the_group_on_every_rank(tmp_path):
    ranks = [subprocess.Popen([sys.executable, '-c', RANK, str(rank), str(tmp_path)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for rank in range(2)]
    for rank, proc in enumerate(ranks):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert f'rank {rank}: destroyed=True after_second=False' in out
