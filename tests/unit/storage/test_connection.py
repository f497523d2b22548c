"""Schema names: what storage accepts before any SQL is built from them."""

from __future__ import annotations

import pytest

from wechat_datacube.errors import ConfigError
from wechat_datacube.storage.connection import validate_schema_name


@pytest.mark.parametrize("name", ["wechat", "wechat_2", "_staging"])
def test_valid_schema_names_are_returned(name: str) -> None:
    assert validate_schema_name(name) == name


@pytest.mark.parametrize("name", ["", "WeChat", "1abc", "we-chat", 'x"; drop', "pg_catalog", "public", "a" * 64])
def test_invalid_schema_names_raise_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid schema name"):
        validate_schema_name(name)
