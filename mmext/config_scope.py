"""Let mmengine resolve ``_base_ = 'mmext::<folder>/<config>.py'``: the one place.

Two things make a config that inherits from ``mmext::`` work:

1. **Parsing** (this module). mmengine only accepts a ``pkg::`` prefix listed in its
   table ``mmengine.config.utils.MODULE2PACKAGE``, and it parses ``_base_`` before a
   config's ``custom_imports`` run. :func:`install_hook` adds ``'mmext'`` to that
   table. ``import mmext`` calls it, which is all that mmext's own ``tools/train.py``
   / ``tools/test.py`` (and any script that imports mmext first) need. Programs that
   parse the config before anything imports mmext (mmdet's and mmseg's own
   ``tools/train.py``) need the hook at interpreter start-up, which is opt-in::

       python -m mmext config-scope enable    # writes mmext-config-scope.pth
       python -m mmext config-scope disable   # removes it
       python -m mmext config-scope status

   The ``.pth`` line loads this file by path (standard library only, no mmext/mmdet
   import) and costs nothing until ``mmengine.config.utils`` is imported.
2. **Building** (:mod:`mmext.registry`): mmengine tags the inherited dicts with
   ``_scope_='mmext'``; that module gives the scope its registry nodes.

The same table entry for ``mmseg`` is repaired on the OneDL forks: their mmengine maps
the scope to the distribution ``mmsegmentation``, but the fork installs as
``onedl-mmsegmentation``, so every ``mmseg::`` config fails with "mmsegmentation is
not installed". Mapping a scope to its module name makes mmengine find the package
through importlib instead. (This is also why mmext's distribution is not named
``mmext``: for an editable install mmengine 0.10.7's pkg_resources lookup of a
distribution named like the package points at site-packages, where no ``mmext/`` is.)
"""
import argparse
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import os.path as osp
import sys
import sysconfig
from types import ModuleType
from typing import List, Optional, Sequence

_TARGET = 'mmengine.config.utils'
PTH_NAME = 'mmext-config-scope.pth'
# Scopes whose distribution name in mmengine's table may not be the installed one.
_TASK_SCOPES = ('mmdet', 'mmseg')


def _distribution_installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _register(module: ModuleType) -> None:
    """Add the ``mmext`` scope to mmengine's prefix table (and repair mmdet/mmseg)."""
    table = module.MODULE2PACKAGE
    # Upstream limitation: mmengine has no API to register a config scope; this
    # table is the only place it looks.
    table.setdefault('mmext', 'mmext')
    for scope in _TASK_SCOPES:
        package = table.get(scope)
        if (package and package != scope and not _distribution_installed(package)
                and importlib.util.find_spec(scope) is not None):
            table[scope] = scope  # e.g. onedl-mmsegmentation: found by module name


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


def pth_path(site_dir: Optional[str] = None) -> str:
    """Where :func:`enable` writes the start-up line (default: this env's purelib)."""
    return osp.join(site_dir or sysconfig.get_paths()['purelib'], PTH_NAME)


def enable(site_dir: Optional[str] = None) -> str:
    """Write the start-up hook (one ``.pth`` line) and return its path."""
    path = pth_path(site_dir)
    # site.py executes .pth lines that start with 'import'; it must be one line.
    line = ('import importlib.util as u; '
            f"s = u.spec_from_file_location('_mmext_config_scope', {osp.abspath(__file__)!r}); "
            'm = u.module_from_spec(s); s.loader.exec_module(m); m.install_hook()\n')
    with open(path, 'w') as f:
        f.write(line)
    return path


def disable(site_dir: Optional[str] = None) -> Optional[str]:
    """Remove the start-up hook; return the removed path (None if there was none)."""
    path = pth_path(site_dir)
    if osp.exists(path):
        os.remove(path)
        return path
    return None


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m mmext config-scope {enable,disable,status} [--site-dir DIR]``."""
    parser = argparse.ArgumentParser(
        prog='python -m mmext config-scope',
        description="Opt in to 'mmext::' configs in programs that do not import "
                    "mmext before they parse a config (mmdet's/mmseg's tools/train.py).")
    parser.add_argument('action', choices=['enable', 'disable', 'status'])
    parser.add_argument('--site-dir', help='site-packages folder (default: this env)')
    args = parser.parse_args(argv)
    if args.action == 'enable':
        print(f'mmext: wrote {enable(args.site_dir)}')
    elif args.action == 'disable':
        removed = disable(args.site_dir)
        print(f'mmext: removed {removed}' if removed else 'mmext: hook was not enabled')
    else:
        path = pth_path(args.site_dir)
        state = 'enabled' if osp.exists(path) else 'disabled'
        print(f'mmext: start-up hook {state} ({path})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
