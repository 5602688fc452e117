"""The ``mmext`` registry scope: what makes configs inherited through ``mmext::`` build.

mmengine tags every typed dict that a config inherits from ``'<pkg>::<file>'`` with
``_scope_='<pkg>'`` and, when it builds such a dict, imports ``<pkg>.registry`` and
looks for a registry whose scope is ``<pkg>``. mmext registers its modules into
mmdet's and mmseg's registries (a detector and a segmentor of mmext are mmdet / mmseg
modules), so it has no registries of its own, and without this module a dict
inherited from ``mmext::`` fails with "... is not in the mmengine::dataset registry".

Here every mmengine root registry gets one child with scope ``'mmext'`` that owns
nothing and forwards each lookup to the registry of the *task scope*: the default
scope that was in effect before mmengine switched to ``'mmext'`` (the ``default_scope``
of the config, ``'mmdet'`` or ``'mmseg'``). Names that mmdet and mmseg both define
(``LoadAnnotations``, ``ResNet``, ...) therefore resolve as in a plain mmdet / mmseg
config. mmengine imports this module by itself (``import_module('mmext.registry')``);
nothing else of mmengine is changed.
"""
from typing import List, Optional, Type

import mmengine.registry as mmengine_registry
from mmengine.registry import DefaultScope, Registry

import mmext  # noqa: F401  (registers mmext's modules into mmdet's / mmseg's registries)
import mmdet.registry  # noqa: F401  (the task registries must exist before a lookup)
import mmseg.registry  # noqa: F401

SCOPE = 'mmext'
TASK_SCOPES = ('mmdet', 'mmseg')


def _task_scope() -> Optional[str]:
    """The innermost default scope other than ``'mmext'`` (None without a runner)."""
    # Private: DefaultScope (a ManagerMixin) exposes only the current instance, which
    # is the temporary 'mmext' one while a dict tagged _scope_='mmext' is built; the
    # scope it replaced is only visible in the ordered instance table.
    for instance in reversed(list(DefaultScope._instance_dict.values())):
        if instance.scope_name != SCOPE:
            return instance.scope_name
    return None


class ScopeAlias(Registry):
    """A registry node for scope ``'mmext'`` that resolves names in the task scope."""

    def _task_registries(self) -> List[Registry]:
        root = self.parent
        assert root is not None
        scope = _task_scope()
        children = root.children  # mmdet's and mmseg's registries are direct children
        if scope in children and scope != SCOPE:
            return [children[scope]]
        # No task scope (a bare MODELS.build without default_scope): try both.
        return [children[s] for s in TASK_SCOPES if s in children]

    def get(self, key: str) -> Optional[Type]:
        """Return what ``key`` means in the task scope (mmdet or mmseg).

        Raises:
            KeyError: without a default scope, if mmdet and mmseg both register
                ``key`` as different objects.
        """
        found = {}
        for registry in self._task_registries():
            obj = registry.get(key)
            if obj is not None:
                found.setdefault(id(obj), (registry.scope, obj))
        if len(found) > 1:
            scopes = ', '.join(scope for scope, _ in found.values())
            raise KeyError(
                f"'{key}' means different things in {scopes}; a config inherited "
                "through 'mmext::' needs default_scope ('mmdet' or 'mmseg') or "
                "mmengine.registry.init_default_scope(...) before it is built.")
        return next(iter(found.values()))[1] if found else None


def _add_aliases() -> None:
    for name in dir(mmengine_registry):
        root = getattr(mmengine_registry, name)
        if isinstance(root, Registry) and root.parent is None \
                and SCOPE not in root.children:
            ScopeAlias(root.name, parent=root, scope=SCOPE)


_add_aliases()
