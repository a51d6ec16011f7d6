"""The typed settings: the schema and its defaults, the layers values come from, validation.

``Settings`` is one frozen dataclass (``_schema``); ``load_settings`` builds it from every layer
(``_load``); each value is checked when it is built (``_validate``); the reference table in the
docs is generated from the schema (``_reference``).
"""

from ._load import env_settings, load_settings, read_pyproject
from ._reference import settings_reference
from ._schema import DEFAULT_RETRY_HTTP_CODES, DEFAULT_USER_AGENT, Settings
from ._validate import BROWSER_RESOURCE_TYPES

__all__ = [
    "BROWSER_RESOURCE_TYPES",
    "DEFAULT_RETRY_HTTP_CODES",
    "DEFAULT_USER_AGENT",
    "Settings",
    "env_settings",
    "load_settings",
    "read_pyproject",
    "settings_reference",
]
