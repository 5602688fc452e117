"""Let mmengine resolve ``_base_ = 'mmext::<folder>/<config>.py'``.

mmengine 0.10.x only accepts the ``pkg::`` prefix for packages in its hard-coded
``mmengine.config.utils.MODULE2PACKAGE`` table, and configs are parsed before their
``custom_imports`` run. So the prefix must be known as soon as mmengine's config
module is imported, in any process (mmdet's own ``tools/train.py`` included).

:func:`write_pth` writes a one-line ``mmext-config-scope.pth`` into site-packages
(``tools/install.sh`` does it). At interpreter start-up that line loads this file by
path (not ``import mmext``, which would pull in mmdet in every Python process) and
runs :func:`install_hook`, which costs nothing until ``mmengine.config.utils`` is
imported and then adds ``'mmext'`` to the table. Only the standard library is used.
"""
import importlib.abc
import importlib.machinery
import os.path as osp
import sys
import sysconfig
from types import ModuleType
from typing import Optional, Sequence

_TARGET = 'mmengine.config.utils'
PTH_NAME = 'mmext-config-scope.pth'


def _register(module: ModuleType) -> None:
    # mmext's distribution is not named 'mmext'; mapping the scope to the module
    # name makes mmengine locate the package with importlib (editable installs too).
    module.MODULE2PACKAGE.setdefault('mmext', 'mmext')


class _Loader(importlib.abc.Loader):
    """Runs the real loader, then registers the scope."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec):  # noqa: D102
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:  # noqa: D102
        self.inner.exec_module(module)
        _register(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of ``mmengine.config.utils`` the first time it is found."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install_hook() -> None:
    """Register the scope now if mmengine's config module is loaded, else on import."""
    if _TARGET in sys.modules:
        _register(sys.modules[_TARGET])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def write_pth(site_dir: Optional[str] = None) -> str:
    """Write the start-up hook into ``site_dir`` (default: this env's purelib)."""
    site_dir = site_dir or sysconfig.get_paths()['purelib']
    path = osp.join(site_dir, PTH_NAME)
    # site.py executes .pth lines that start with 'import'; it must be one line.
    line = ('import importlib.util as u; '
            f"s = u.spec_from_file_location('_mmext_config_scope', {osp.abspath(__file__)!r}); "
            'm = u.module_from_spec(s); s.loader.exec_module(m); m.install_hook()\n')
    with open(path, 'w') as f:
        f.write(line)
    return path
