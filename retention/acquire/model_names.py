"""timm's model names, checked without importing timm (or torch) where a list is cached.

The config check runs whenever Snakemake parses the workflow (every dry run, every
``--report``); importing timm there costs seconds. So the names timm knows are listed
once per installed timm version (read from the package metadata, no import) and kept
as ``<cache_dir>/timm_models-<version>.json``; later checks read that file. A new timm
version gets a new file. A cache that cannot be read is rebuilt; one that cannot be
written leaves the check to import timm each time, as before. The list depends on the
installed timm alone, so the config check keeps it in the user's cache
(:func:`user_cache_dir`), shared by every study folder on the machine.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
from pathlib import Path

from retention.errors import ConfigError

log = logging.getLogger("retention.acquire.model_names")


#: the environment variable naming the user's cache folder (see :func:`user_cache_dir`)
CACHE_ENV = "RETENTION_CACHE"


def user_cache_dir() -> Path:
    """``$RETENTION_CACHE``, else ``$XDG_CACHE_HOME/retention``, else ``~/.cache/retention``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "retention"


def timm_version() -> str:
    """The installed timm's version, from its package metadata (timm is not imported)."""
    return importlib.metadata.version("timm")


def names_from_timm() -> dict:
    """{"timm": version, "models": architectures, "pretrained": 'arch.tag' names}: imports timm."""
    import timm

    return {"timm": timm.__version__, "models": timm.list_models(), "pretrained": timm.list_pretrained()}


def cached_names(cache_dir: str | os.PathLike) -> dict:
    """:func:`names_from_timm`, from ``<cache_dir>/timm_models-<version>.json`` when there."""
    path = Path(cache_dir) / f"timm_models-{timm_version()}.json"
    try:
        names = json.loads(path.read_text())
        if names["timm"] == timm_version() and names["models"] and names["pretrained"]:
            return names
    except (OSError, ValueError, KeyError, TypeError):
        pass
    names = names_from_timm()
    try:
        from retention.io import save_text

        save_text(path, json.dumps(names))
        log.info("listed timm %s's model names in %s", names["timm"], path)
    except OSError as err:
        log.warning("could not cache timm's model names at %s (%s)", path, err)
    return names


def check_model_name(name: str, cache_dir: str | os.PathLike | None = None) -> None:
    """Raise ConfigError unless ``name`` is a timm model (with an existing tag, if any).

    cache_dir: where the name list is cached (see the module docstring); None asks timm.
    """
    from retention.config import suggest

    names = names_from_timm() if cache_dir is None else cached_names(cache_dir)
    base = name.split(".", 1)[0]
    if base not in set(names["models"]):
        raise ConfigError(
            f"'{name}' is not a timm model name (see timm.list_models()){suggest(base, names['models'])}"
        )
    if "." in name and name not in set(names["pretrained"]):
        tags = [n for n in names["pretrained"] if n.split(".", 1)[0] == base]
        raise ConfigError(
            f"timm model '{name}' has no pretrained tag '{name.split('.', 1)[1]}'"
            + (f" (its tags: {', '.join(t.split('.', 1)[1] for t in tags)})" if tags else "")
            + suggest(name, tags)
        )
