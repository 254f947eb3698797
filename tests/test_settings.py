"""Settings from an injected environment, and the refusals of values that cannot work."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cms_mock import cli, pytest_plugin
from cms_mock.metrics import MULTIPROCESS
from cms_mock.services import SERVICES, service
from cms_mock.settings import MAX_WORKERS, PROCESS_VARIABLES, TABLE, Settings, SettingsError, settings_markdown, variables
from cms_mock.workers import STATE_DIR, SUPERVISOR
from docs.hooks.settings_table import MARKER

ROOT = Path(__file__).parent.parent


def test_defaults_match_the_seed():
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.cors_origins, settings.data_dir) == ("0.0.0.0", None, ("*",), Path("data"))
    assert settings.service == "cms"


def test_every_variable_is_read():
    env = {
        "HOST": "127.0.0.1",
        "PORT": "4000",
        "DEBUG": "true",
        "CORS_ORIGINS": '["http://a.test", "http://b.test"]',
        "DATA_DIR": "/tmp/x",
        "LOG_LEVEL": "WARNING",
        "WORKERS": "2",
        "MAX_BODY_BYTES": "2048",
        "SERVICE": "profile",
    }
    settings = Settings.from_env(env)
    assert settings == Settings(
        service="profile",
        host="127.0.0.1",
        port=4000,
        debug=True,
        cors_origins=("http://a.test", "http://b.test"),
        data_dir=Path("/tmp/x"),
        log_level="warning",
        workers=2,
        max_body_bytes=2048,
    )


@pytest.mark.parametrize(
    ("raw", "origins"), [('[ "*" ]', ("*",)), ("http://a.test, http://b.test", ("http://a.test", "http://b.test")), ("http://a.test", ("http://a.test",))]
)
def test_cors_origins_as_json_list_or_comma_separated(raw, origins):
    assert Settings.from_env({"CORS_ORIGINS": raw}).cors_origins == origins


def test_flags_override_the_environment():
    assert Settings.from_env({"PORT": "4000"}, port=5000).port == 5000
    assert Settings.from_env({"PORT": "4000"}, port=None).port == 4000


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "-1"}, "PORT"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"CORS_ORIGINS": "[oops"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "[1, 2]"}, "CORS_ORIGINS"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"DATABASE_URL": "mysql://u@h/d"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u@h/d", "WORKERS": "1", "DATABASE_TIMEOUT": "0"}, "DATABASE_TIMEOUT"),
        ({"PORT": "70000"}, "PORT"),
        ({"CORS_ORIGINS": '{"a": 1}'}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "http://a.test http://b.test"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "a.test"}, "CORS_ORIGINS"),
        ({"API_KEY": " "}, "API_KEY"),
        ({"DATA_DIR": ""}, "DATA_DIR"),
        ({"WORKERS": str(MAX_WORKERS + 1)}, "WORKERS"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_an_unknown_service_is_refused_naming_the_known_ones():
    with pytest.raises(SettingsError, match="SERVICE must be one of cms, profile, not 'billing'"):
        service("billing")


def test_memory_and_a_database_together_are_refused():
    with pytest.raises(SettingsError, match="--in-memory cannot be combined with DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": "postgresql://u@h/d"}, in_memory=True)


def test_a_database_password_is_never_shown():
    settings = Settings.from_env({"DATABASE_URL": "postgresql://cms:s3cr@t@db:5432/cms"})
    assert settings.database_shown == "postgresql://cms:***@db:5432/cms"


def test_debug_means_debug_logging_unless_a_level_is_given():
    assert Settings.from_env({"DEBUG": "true"}).log_level == "debug"
    assert Settings.from_env({"DEBUG": "true", "LOG_LEVEL": "warning"}).log_level == "warning"
    assert Settings.from_env({}, debug=True).log_level == "debug"


def test_an_empty_api_key_is_unset_and_the_log_will_say_so():
    settings = Settings.from_env({"API_KEY": ""})
    assert settings.api_key is None
    assert settings.notices == ("API_KEY is set but empty: taken as unset, so no request needs a key",)


def test_a_data_dir_that_cannot_be_made_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError, match=r"DATA_DIR .* cannot be made"):
        Settings(data_dir=tmp_path / "file" / "data").check_data_dir()


class _Watched(dict):
    """An environment that notes every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def __contains__(self, name: object) -> bool:
        self.asked.add(str(name))
        return super().__contains__(name)

    def get(self, name, default=None):  # type: ignore[no-untyped-def]
        self.asked.add(name)
        return super().get(name, default)


def test_every_variable_settings_read_is_in_the_table():
    env = _Watched()
    Settings.from_env(env)
    listed = {setting.variable for setting in TABLE if setting.variable}
    assert env.asked == listed, (env.asked - listed, listed - env.asked)


def test_the_table_names_each_variable_and_flag_once_and_the_process_variables_are_cms_mocks():
    names = [s.variable for s in TABLE if s.variable] + [s.flag for s in TABLE if s.flag]
    assert len(names) == len(set(names))
    assert set(PROCESS_VARIABLES) == {STATE_DIR, MULTIPROCESS, SUPERVISOR}
    assert set(variables()) == {s.variable for s in TABLE if s.variable} | set(PROCESS_VARIABLES)


def test_every_settings_field_has_a_row_whose_default_is_the_fields():
    """The default a row shows, given as its variable, is the default: the table copies nothing by hand."""
    assert {setting.field for setting in TABLE} == {field.name for field in dataclasses.fields(Settings)} - {"notices"}
    shown = [setting for setting in TABLE if setting.variable and getattr(Settings(), setting.field) is not None]
    assert len(shown) > 10
    for setting in shown:
        assert Settings.from_env({setting.variable: setting.default}) == Settings(), setting
    assert [setting.default for setting in TABLE if getattr(Settings(), setting.field) is None] == [
        setting.unset for setting in TABLE if getattr(Settings(), setting.field) is None
    ]


def test_the_table_says_what_it_says_of_the_services_from_the_services():
    described = {setting.variable: setting.described(SERVICES.values()) for setting in TABLE}
    assert described["PORT"][0] == ", ".join(f"{entry.default_port} ({entry.key})" for entry in SERVICES.values())
    assert all(entry.data_file in described["DATA_DIR"][1] for entry in SERVICES.values())
    assert f"({' or '.join(SERVICES)})" in described["SERVICE"][1]
    assert not any("{" in default + meaning for default, meaning in described.values())


@pytest.mark.live
def test_a_server_the_pytest_plugin_starts_inherits_none_of_the_tables_variables(tmp_path, monkeypatch):
    """The consumer's own DATABASE_URL or API_KEY are not the mock's: read from the server's own environment."""
    for name in variables():
        monkeypatch.setenv(name, "polluted")
    monkeypatch.setenv("CMS_MOCK_TEST_UNRELATED", "kept")
    with pytest_plugin.start_server("cms", tmp_path / "data") as server:
        assert server._process is not None
        inherited = dict(entry.split(b"=", 1) for entry in Path(f"/proc/{server._process.pid}/environ").read_bytes().split(b"\0") if entry)
    assert inherited[b"CMS_MOCK_TEST_UNRELATED"] == b"kept"
    assert not {name.encode() for name in variables()} & set(inherited)


def test_the_configuration_page_has_the_marker_the_table_replaces():
    assert MARKER in (ROOT / "docs" / "configuration.md").read_text()


def test_the_documentation_table_has_a_row_per_setting():
    header, rule, *rows = settings_markdown(SERVICES.values()).splitlines()
    assert (header, rule) == ("| Variable | Flag | Default | Meaning |", "|---|---|---|---|")
    assert len(rows) == len(TABLE)
    for row, setting in zip(rows, TABLE, strict=True):
        default, meaning = setting.described(SERVICES.values())
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells == [
            f"`{setting.variable}`" if setting.variable else "",
            f"`{setting.flag}`" if setting.flag else "",
            f"`{default}`",
            meaning,
        ]


def test_every_flag_of_the_table_is_a_flag_of_the_command_and_every_settings_flag_is_in_the_table():
    actions = {option: action for action in cli._parser()._actions for option in action.option_strings}
    table = {setting.flag for setting in TABLE if setting.flag}
    assert table <= set(actions)
    per_service = {f"--{name}-port" for name in SERVICES}
    assert set(actions) - table - per_service == {"-h", "--help", "--version"}


def test_the_environment_handed_to_workers_reads_back_as_the_same_settings():
    """``cms-mock --workers N`` hands its settings to the workers it starts as the variables of the table."""
    env = {
        "SERVICE": "profile",
        "HOST": "127.0.0.1",
        "PORT": "4000",
        "DEBUG": "true",
        "CORS_ORIGINS": "http://a.test, http://b.test",
        "DATABASE_URL": " postgresql://u@h/d ",
        "HEAD_TIMEOUT": "2.5",
        "API_KEY": "k",
        "API_KEY_READS": "yes",
        "ADMIN_API": "off",
        "FIXTURES": "f.json",
        "METRICS": "0",
    }
    for settings in (Settings(), Settings.from_env(env)):
        assert Settings.from_env(settings.environment()) == settings
    assert not {"PORT", "API_KEY", "DATABASE_URL", "FIXTURES"} & set(Settings().environment())  # unset stays unset
