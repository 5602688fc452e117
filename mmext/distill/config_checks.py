"""Checks of the ``teacher=dict(...)`` / ``distill=dict(...)`` sections of a
``FeatureDistiller`` config: copies them and refuses unknown keys at build time."""
import copy
import difflib
from typing import Iterable, Mapping

from mmengine.config import Config, ConfigDict

from ..utils.errors import UserError


def as_config_dict(cfg) -> ConfigDict:
    """A deep copy of ``cfg`` (dict, ConfigDict or Config) as a ConfigDict
    (mmdet models read their sub-configs by attribute)."""
    # Config.to_dict() / ConfigDict.to_dict(): plain dicts all the way down
    plain = cfg.to_dict() if isinstance(cfg, (Config, ConfigDict)) else dict(cfg)
    return ConfigDict(copy.deepcopy(plain))


def check_keys(section: str, cfg: Mapping, accepted: Iterable[str]) -> None:
    """UserError naming every unknown key of ``model.<section>`` and the accepted ones.

    A misspelt key would otherwise be ignored silently and its default used (e.g.
    ``levles=[0, 1]`` would distil every level).
    """
    accepted = sorted(accepted)
    unknown = sorted(k for k in cfg if k not in accepted)
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), accepted, n=1)
        hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ''))
    raise UserError(f"model.{section}: unknown key{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(hints)}; accepted keys: {', '.join(accepted)}")
