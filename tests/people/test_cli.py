"""``parcel-monitor user …`` with real prompts: add, list, disable, reset-password, set-role, token."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from monitor.cli import main
from monitor.clock import SimulatedClock
from monitor.people.auth import TokenAuth, authenticate
from monitor.people.model import Role
from monitor.people.store import TOK
from monitor.people.tokens import digest
from monitor.store.db import make_engine
from monitor.store.store import Store
from tests.people.conftest import START

PASSWORD = "Tr0ub4dor&3-long"


def cli(tmp_path: Path, url: str, *args: str, input: str | None = None) -> Result:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    env = {"PARCEL_MONITOR_DATABASE_URL": None, "PARCEL_MONITOR_CONFIG": None}
    return CliRunner().invoke(main, ["user", args[0], "--config", str(config), *args[1:]], input=input, env=env)


def add(tmp_path: Path, url: str, name: str, *options: str, password: str = PASSWORD) -> Result:
    result = cli(tmp_path, url, "add", name, *options, input=f"{password}\n{password}\n")
    assert result.exit_code == 0, result.output
    return result


def open_store(url: str) -> Store:
    return Store(make_engine(url))


def test_add_asks_the_password_twice_and_hides_it(tmp_path: Path, database_url: str) -> None:
    result = add(tmp_path, database_url, "Li.Lei", "--display-name", "李雷", "--mobile", "138 1234 5678",
                 "--role", "operator")  # fmt: skip
    assert "Password: " in result.stdout and "Repeat for confirmation: " in result.stdout
    assert PASSWORD not in result.output
    assert result.stdout.endswith("added li.lei (李雷), role operator\n")
    store = open_store(database_url)
    principal = authenticate(store, "li.lei", PASSWORD)
    assert principal is not None and principal.role is Role.OPERATOR
    store.close()


def test_mismatched_prompts_ask_again(tmp_path: Path, database_url: str) -> None:
    result = cli(tmp_path, database_url, "add", "han", input=f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    store = open_store(database_url)
    assert authenticate(store, "han", PASSWORD) is not None and authenticate(store, "han", "something else") is None
    store.close()


def test_password_from_stdin_for_scripts(tmp_path: Path, database_url: str) -> None:
    result = cli(tmp_path, database_url, "add", "ci-bot", "--password-stdin", input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Password" not in result.output
    store = open_store(database_url)
    assert authenticate(store, "ci-bot", PASSWORD) is not None
    store.close()


def test_list_masks_the_mobile_and_counts_tokens(tmp_path: Path, database_url: str) -> None:
    assert "no accounts yet" in cli(tmp_path, database_url, "list").stdout
    add(tmp_path, database_url, "li.lei", "--display-name", "李雷", "--mobile", "13812345678", "--role", "admin")
    add(tmp_path, database_url, "han")
    assert cli(tmp_path, database_url, "token", "li.lei").exit_code == 0
    listed = cli(tmp_path, database_url, "list")
    assert listed.exit_code == 0, listed.output
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert lines == [
        ["login", "display", "name", "mobile", "role", "disabled", "tokens"],
        ["han", "han", "-", "viewer", "no", "0"],
        ["li.lei", "李雷", "138****5678", "admin", "no", "1"],
    ]
    assert "13812345678" not in listed.output


def test_disable_enable_and_set_role(tmp_path: Path, database_url: str) -> None:
    add(tmp_path, database_url, "lucy", "--role", "operator")
    assert cli(tmp_path, database_url, "disable", "LUCY").stdout == "lucy disabled\n"
    store = open_store(database_url)
    assert authenticate(store, "lucy", PASSWORD) is None
    assert cli(tmp_path, database_url, "list").stdout.splitlines()[1].split()[-2] == "yes"
    assert cli(tmp_path, database_url, "disable", "lucy", "--enable").stdout == "lucy enabled\n"
    assert authenticate(store, "lucy", PASSWORD) is not None
    assert cli(tmp_path, database_url, "set-role", "lucy", "viewer").stdout == "lucy is now viewer\n"
    assert authenticate(store, "lucy", PASSWORD).role is Role.VIEWER  # type: ignore[union-attr]
    store.close()


def test_reset_password(tmp_path: Path, database_url: str) -> None:
    add(tmp_path, database_url, "lily")
    new = "a-new-password-42"
    result = cli(tmp_path, database_url, "reset-password", "lily", input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert new not in result.output and result.stdout.endswith("password of lily changed\n")
    store = open_store(database_url)
    assert authenticate(store, "lily", new) is not None and authenticate(store, "lily", PASSWORD) is None
    store.close()


def test_a_token_is_printed_once_stored_hashed_and_revoked(tmp_path: Path, database_url: str) -> None:
    add(tmp_path, database_url, "li.lei", "--role", "operator")
    issued = cli(tmp_path, database_url, "token", "li.lei", "--label", "erp sync")
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip()  # alone on stdout, for TOKEN=$(parcel-monitor user token …)
    assert token.startswith("pm_") and "shown once" in issued.stderr
    token_id = token[3:11]
    listed = cli(tmp_path, database_url, "token", "li.lei", "--list")
    assert listed.stdout.split()[:2] == [token_id, "works"] and "erp sync" in listed.stdout
    assert token not in listed.output and token not in cli(tmp_path, database_url, "list").output
    store = open_store(database_url)
    with store.engine.connect() as conn:
        assert conn.execute(select(TOK.c.token_hash)).scalars().all() == [digest(token)]
    auth = TokenAuth(store, SimulatedClock(START), None)
    assert auth.check(token)[0] is not None
    revoked = cli(tmp_path, database_url, "token", "li.lei", "--revoke", token_id)
    assert revoked.exit_code == 0 and revoked.stdout == f"token {token_id} of li.lei revoked\n"
    assert auth.check(token)[0] is None
    assert cli(tmp_path, database_url, "token", "li.lei", "--list").stdout.split()[1] == "revoked"
    store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "bad name!"), "error: login 'bad name!': use 1–32 of a-z"),
        (("add", "service"), "error: login 'service': reserved"),
        (("add", "jim", "--mobile", "12345"), "error: mobile '12345': not a mainland mobile number"),
        (("add", "jim", "--display-name", " "), "error: display name ' ': use 1–64 characters"),
        (("disable", "ghost"), "error: login 'ghost': no such account"),
        (("reset-password", "ghost"), "error: login 'ghost': no such account"),
        (("set-role", "ghost", "admin"), "error: login 'ghost': no such account"),
        (("token", "ghost"), "error: login 'ghost': no such account"),
        (("token", "li.lei", "--revoke", "nope"), "error: token id 'nope': no such token of li.lei"),
        (("token", "li.lei", "--label", "x" * 65), "error: label 'xxxx"),
    ],
)
def test_errors_name_the_field_and_value_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    url = f"sqlite:///{tmp_path / 'people.db'}"
    add(tmp_path, url, "li.lei")
    result = cli(tmp_path, url, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and "Traceback" not in result.output
    assert "Password" not in result.output  # refused before anyone is asked for a password


def test_a_taken_login_is_refused_before_the_prompt(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'people.db'}"
    add(tmp_path, url, "li.lei")
    result = cli(tmp_path, url, "add", "LI.LEI")
    assert result.exit_code == 2 and result.stderr == "error: login 'li.lei': an account with this login exists\n"
    assert "Password" not in result.output


def test_a_short_password_is_refused_with_exit_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'people.db'}"
    result = cli(tmp_path, url, "add", "jim", input="abc\nabc\n")
    assert result.exit_code == 2 and "error: password: too short" in result.stderr


def test_edit_the_display_name_and_mobile(tmp_path: Path, database_url: str) -> None:
    add(tmp_path, database_url, "lily", "--mobile", "13812345678")
    result = cli(tmp_path, database_url, "edit", "lily", "--display-name", "莉莉", "--mobile", "+86 139-1234-5678")
    assert result.exit_code == 0, result.output
    assert result.stdout == "lily: 莉莉, mobile 139****5678\n"
    assert cli(tmp_path, database_url, "edit", "lily", "--mobile", "").stdout == "lily: 莉莉, mobile none\n"
    refused = cli(tmp_path, database_url, "edit", "lily", "--mobile", "23912345678")
    assert refused.exit_code == 2 and refused.stderr.startswith("error: mobile '23912345678': not a mainland")
