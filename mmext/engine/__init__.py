"""Runner-side glue shared by ``tools/``: config pre-flight checks, CPU (gloo)
distributed launch, and one-line errors for bad input."""
from .cpu_ddp import CPUDistributedDataParallel
from .errors import UserError, run_cli
from .launch import finish_distributed, setup_launcher
from .preflight import (check_annotation_files, check_checkpoint,
                        check_coco_annotations, check_data_paths,
                        check_model_checkpoints, load_config)

__all__ = [
    'CPUDistributedDataParallel', 'UserError', 'run_cli', 'setup_launcher',
    'finish_distributed', 'check_checkpoint', 'check_data_paths', 'load_config',
    'check_annotation_files', 'check_coco_annotations', 'check_model_checkpoints'
]
