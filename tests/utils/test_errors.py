"""``mmext.utils.errors`` is a leaf: importing the error type registers nothing."""
import ast
import subprocess
import sys
from pathlib import Path

import mmext.utils.errors as errors

SOURCE = Path(errors.__file__)


def test_errors_module_imports_nothing():
    tree = ast.parse(SOURCE.read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == [], 'mmext/utils/errors.py must stay a leaf module'


def test_importing_the_error_type_does_not_import_the_engine_or_models():
    # Loaded by path so that mmext/__init__ (which registers modules) does not run.
    code = ('import importlib.util, sys; '
            f's = importlib.util.spec_from_file_location("e", {str(SOURCE)!r}); '
            'm = importlib.util.module_from_spec(s); s.loader.exec_module(m); '
            'assert issubclass(m.UserError, RuntimeError); '
            'print(sorted(k for k in sys.modules if k.startswith(("mmext", "mmdet", "mmseg", "mmengine"))))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == '[]'


def test_engine_reexports_the_same_class():
    from mmext.engine import UserError
    assert UserError is errors.UserError
