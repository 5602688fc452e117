"""The package map of docs/architecture.md: who may import whom."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'mmext'


def _mmext_imports(path: Path):
    """Absolute names of the mmext modules that ``path`` imports."""
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    package = parts[:-1]  # the containing package, for a module and an __init__ alike
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                yield '.'.join(base + ((node.module,) if node.module else ()))
            elif node.module and node.module.split('.')[0] == 'mmext':
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split('.')[0] == 'mmext')


def _files(*subpackages):
    for sub in subpackages:
        yield from (PACKAGE / sub).rglob('*.py')


def test_models_datasets_and_metrics_do_not_import_the_engine():
    offenders = {str(f.relative_to(PACKAGE)): name
                 for f in _files('distill', 'panoptic', 'seg', 'datasets', 'evaluation',
                                 'utils', 'ops')
                 for name in _mmext_imports(f) if name.startswith('mmext.engine')}
    assert offenders == {}


def test_ops_import_nothing_else_of_mmext():
    offenders = {str(f.relative_to(PACKAGE)): name for f in _files('ops')
                 for name in _mmext_imports(f) if not name.startswith('mmext.ops')}
    assert offenders == {}


def test_the_rule_checker_resolves_relative_imports():
    # lau_head.py imports `from ..ops import ...` and `from .errors import ...`.
    assert {'mmext.ops', 'mmext.seg.errors'} <= set(_mmext_imports(PACKAGE / 'seg' / 'lau_head.py'))
