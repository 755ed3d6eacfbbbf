"""Slack slash commands: the form body, allow lists, the text grammar and the replies."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from function.chat import (
    MAX_BLOCKS,
    ExportCommand,
    HelpCommand,
    ServerCommand,
    SlashCommand,
    StatusCommand,
    ephemeral,
    escape,
    help_text,
    is_allowed,
    parse_form,
    parse_text,
    results_message,
)
from function.chat.__main__ import main as chat_main
from function.chat.commands import OPTIONS, listed, markdown
from function.errors import InvalidInput

VOLUME = "16369c5d-384d-4e64-b37a-56d898769362"
SERVER = "2f5e8c4a-7d1b-4c3e-9a6f-0b1c2d3e4f50"
IMAGE = "c5333daa-fbc8-4d1d-bf79-b0567bb45d15"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    b"%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    b"trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


def command(user: str = "U1", channel: str = "C1", text: str = "") -> SlashCommand:
    return SlashCommand(
        team_id="T1",
        channel_id=channel,
        user_id=user,
        user_name="alice",
        command="/evs-export",
        text=text,
        response_url="https://hooks.slack.com/commands/T1/1/x",
        trigger_id="1.2.3",
    )


def export(text: str) -> ExportCommand:
    result = parse_text(text)
    assert isinstance(result, ExportCommand)
    return result


def invalid(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as exc:
        parse_text(text)
    return exc.value


# --- parse_form -------------------------------------------------------------------------------


def test_parse_form_reads_slack_documented_body() -> None:
    """Slack's documented request body parses into its fields, percent-decoded."""
    assert parse_form(SLACK_BODY) == SlashCommand(
        team_id="T1DC2JH3J",
        channel_id="G8PSS9T3V",
        user_id="U2CERLKJA",
        user_name="roadrunner",
        command="/webhook-collect",
        text="",
        response_url="https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN",
        trigger_id="398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
        ssl_check=False,
    )


def test_parse_form_decodes_text_with_quotes_and_spaces() -> None:
    """The text field keeps quotes and spaces, whether encoded with + or %20."""
    body = urlencode({"user_id": "U1", "channel_id": "C1", "text": f'{VOLUME} name="a b"'})
    assert parse_form(body.encode()).text == f'{VOLUME} name="a b"'


def test_parse_form_ssl_check_needs_no_user() -> None:
    """Slack's ssl_check probe parses without user_id or channel_id."""
    cmd = parse_form(b"ssl_check=1&token=abc")
    assert cmd.ssl_check
    assert cmd.user_id == ""


@pytest.mark.parametrize("field", ["user_id", "channel_id"])
def test_parse_form_requires_user_and_channel(field: str) -> None:
    """A command without user_id or channel_id raises InvalidInput naming that field."""
    values = {"user_id": "U1", "channel_id": "C1", "text": "help"}
    values[field] = ""
    with pytest.raises(InvalidInput) as exc:
        parse_form(urlencode(values).encode())
    assert exc.value.field == field


def test_parse_form_rejects_repeated_field() -> None:
    """A field given twice (user_id=A&user_id=B) is refused rather than guessed."""
    with pytest.raises(InvalidInput) as exc:
        parse_form(b"user_id=U1&user_id=U2&channel_id=C1")
    assert exc.value.field == "user_id"


def test_parse_form_rejects_overlong_field() -> None:
    """A field longer than its limit raises InvalidInput naming it."""
    with pytest.raises(InvalidInput) as exc:
        parse_form(urlencode({"user_id": "U" * 65, "channel_id": "C1"}).encode())
    assert exc.value.field == "user_id"


@pytest.mark.parametrize("body", [b"user_id", b"user_id=U1&&channel_id=C1", b"text=%ff", b"\xff=1"])
def test_parse_form_rejects_malformed_body(body: bytes) -> None:
    """A body that is not a strict UTF-8 form raises InvalidInput on "body"."""
    with pytest.raises(InvalidInput) as exc:
        parse_form(body)
    assert exc.value.field == "body"


def test_parse_form_rejects_too_many_fields() -> None:
    """A form with too many fields is refused before it is parsed in full."""
    body = "&".join(f"f{i}=1" for i in range(100)).encode()
    with pytest.raises(InvalidInput):
        parse_form(body)


# --- is_allowed -------------------------------------------------------------------------------


def test_is_allowed_refuses_everyone_when_no_users_listed() -> None:
    """With no allowed users nobody may run commands, and the reason says to set the list."""
    reason = is_allowed(command(), frozenset(), frozenset({"C1"}))
    assert reason is not None
    assert "CHAT_ALLOWED_USERS" in reason


def test_is_allowed_refuses_unlisted_user() -> None:
    """A user not in CHAT_ALLOWED_USERS is refused, told which ID to add."""
    reason = is_allowed(command(user="U9"), frozenset({"U1"}), None)
    assert reason is not None
    assert "U9" in reason
    assert "CHAT_ALLOWED_USERS" in reason


def test_is_allowed_accepts_listed_user_in_any_channel() -> None:
    """A listed user may run commands anywhere when no channel list is set."""
    assert is_allowed(command(), frozenset({"U1", "U2"}), None) is None


def test_is_allowed_refuses_unlisted_channel() -> None:
    """With CHAT_ALLOWED_CHANNELS set, other channels are refused with the channel's ID."""
    reason = is_allowed(command(channel="C9"), frozenset({"U1"}), frozenset({"C1"}))
    assert reason is not None
    assert "C9" in reason
    assert "CHAT_ALLOWED_CHANNELS" in reason
    assert is_allowed(command(channel="C1"), frozenset({"U1"}), frozenset({"C1"})) is None


def test_is_allowed_empty_channel_set_allows_no_channel() -> None:
    """An empty (but set) channel list fails closed."""
    assert is_allowed(command(), frozenset({"U1"}), frozenset()) is not None


# --- parse_text: grammar ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "help export", "?"])
def test_parse_text_help(text: str) -> None:
    """Empty text and help (any case) ask for the grammar."""
    assert parse_text(text) == HelpCommand()


def test_parse_text_volume_only() -> None:
    """A bare volume ID exports it with every option unset."""
    assert parse_text(VOLUME) == ExportCommand(volume_id=VOLUME)


def test_parse_text_quoted_name_with_space() -> None:
    """name="nightly db" keeps the space inside the quotes."""
    assert parse_text(f'{VOLUME} name="nightly db"') == ExportCommand(VOLUME, "nightly db")


def test_parse_text_single_quotes_and_smart_quotes() -> None:
    """Single quotes and the typographic quotes Slack clients insert both work."""
    assert export(f"{VOLUME} name='nightly db'").image_name == "nightly db"
    assert export(f"{VOLUME} name=“nightly db”").image_name == "nightly db"


def test_parse_text_all_options() -> None:
    """Every option is parsed, values lower-cased, in any order."""
    text = f'{VOLUME.upper()} force os=Windows container=bare format=QCOW2 name="db 1"'
    assert parse_text(text) == ExportCommand(
        volume_id=VOLUME,
        image_name="db 1",
        disk_format="qcow2",
        container_format="bare",
        os_type="windows",
        force=True,
    )


def test_parse_text_force_flag() -> None:
    """The bare word force sets force; without it force is false."""
    assert parse_text(f"{VOLUME} force") == ExportCommand(VOLUME, force=True)
    assert export(f"{VOLUME} FORCE").force is True


def test_parse_text_server_with_force_and_format() -> None:
    """server <id> force format=qcow2 asks for every disk of that server."""
    assert parse_text(f"server {SERVER} force format=qcow2") == ServerCommand(
        server_id=SERVER, force=True, disk_format="qcow2"
    )


def test_parse_text_server_name_template() -> None:
    """A server's name may be a template with {field} placeholders."""
    result = parse_text(f'server {SERVER} name="{{server_name}}-{{volume_name}}-{{time:%Y%m%d}}"')
    assert result == ServerCommand(SERVER, image_name="{server_name}-{volume_name}-{time:%Y%m%d}")


@pytest.mark.parametrize(
    ("template", "needle"),
    [("{foo}-x", "{foo}"), ("{volume_name", "not a valid template"), ("{disk!r}", "conversion")],
)
def test_parse_text_rejects_bad_server_name_template(template: str, needle: str) -> None:
    """A server name template with an unknown or malformed field is refused at once."""
    err = invalid(f"server {SERVER} name={shlex.quote(template)}")
    assert err.field == "name"
    assert needle in err.message


def test_parse_text_status() -> None:
    """status <image_id> asks for one image's state."""
    assert parse_text(f"status {IMAGE}") == StatusCommand(IMAGE)


def test_parse_text_undoes_slack_html_escaping() -> None:
    """Slack's &amp;/&lt;/&gt; escaping is undone before parsing (then names are checked)."""
    err = invalid(f'{VOLUME} name="a &amp; b"')
    assert err.field == "name"
    assert "'&'" in err.message


def test_parse_text_chinese_name() -> None:
    """Chinese characters are valid in an image name."""
    assert export(f"{VOLUME} name=夜间备份").image_name == "夜间备份"


# --- parse_text: errors -----------------------------------------------------------------------


def test_parse_text_rejects_unknown_option() -> None:
    """An unknown option names itself and lists the options to type instead."""
    err = invalid(f"{VOLUME} colour=blue")
    assert err.field == "text"
    assert "'colour=blue'" in err.message
    assert "name=, format=, container=, os= and force" in err.message


def test_parse_text_rejects_export_option_on_server() -> None:
    """container= and os= belong to a volume export, not to server."""
    err = invalid(f"server {SERVER} os=linux")
    assert err.field == "text"
    assert "name=, format= and force" in err.message


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        (f"{VOLUME} format=zip", "format", "vhd, zvhd, zvhd2, raw, qcow2"),
        (f"{VOLUME} container=docker", "container", "ami, ari, aki, ovf, bare"),
        (f"{VOLUME} os=macos", "os", "linux, windows"),
        (f"server {SERVER} format=vmdk", "format", "vhd, zvhd, zvhd2, raw, qcow2"),
    ],
)
def test_parse_text_rejects_bad_choice(text: str, field: str, allowed: str) -> None:
    """A value outside an option's choices is refused, listing the allowed values."""
    err = invalid(text)
    assert err.field == field
    assert allowed in err.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("not-a-uuid", "volume_id"),
        ("16369c5d384d4e64b37a56d898769362", "volume_id"),
        ("server abc", "server_id"),
        ("server", "server_id"),
        ("status 42", "image_id"),
        ("status", "image_id"),
        ('name="x"', "volume_id"),
        ("force", "volume_id"),
    ],
)
def test_parse_text_rejects_bad_or_missing_id(text: str, field: str) -> None:
    """An ID that is missing or not a UUID is refused, with an example UUID to copy."""
    err = invalid(text)
    assert err.field == field
    assert VOLUME in err.message


@pytest.mark.parametrize("text", [f'{VOLUME} name="nightly db', f"{VOLUME} name='x"])
def test_parse_text_rejects_unbalanced_quotes(text: str) -> None:
    """An unclosed quote is refused, showing how to quote a name."""
    err = invalid(text)
    assert err.field == "text"
    assert "unbalanced quotes" in err.message


def test_parse_text_rejects_trailing_backslash() -> None:
    """A lone trailing backslash is refused with plain words."""
    assert invalid(f"{VOLUME} name=x\\").field == "text"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (f"{VOLUME} name=a name=b", "name"),
        (f"{VOLUME} format=raw disk_format=raw", "format"),
        (f"{VOLUME} force force", "force"),
    ],
)
def test_parse_text_rejects_repeated_option(text: str, field: str) -> None:
    """An option given twice (also through its alias) is refused, naming it."""
    err = invalid(text)
    assert err.field == field
    assert "twice" in err.message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (f'{VOLUME} name="a/b"', "'/'"),
        (f'{VOLUME} name=" padded"', "start or end with a space"),
        (f"{VOLUME} name=", "1 to 128"),
        (f"{VOLUME} name={'x' * 129}", "1 to 128"),
        (f'server {SERVER} name="{{volume_name}}/x"', "'/'"),
    ],
)
def test_parse_text_rejects_invalid_image_name(text: str, needle: str) -> None:
    """A name that breaks the seed's naming rules is refused with the rule it breaks."""
    err = invalid(text)
    assert err.field == "name"
    assert needle in err.message
    assert "image_name" not in err.message


def test_parse_text_rejects_option_without_value() -> None:
    """A known option without "=value" says how to write it."""
    err = invalid(f"{VOLUME} format qcow2")
    assert err.field == "format"
    assert "format=qcow2" in err.message


def test_parse_text_rejects_force_with_value() -> None:
    """force is a bare flag; force=true is refused with what to type."""
    assert invalid(f"{VOLUME} force=true").field == "force"


def test_parse_text_rejects_extra_words_after_status() -> None:
    """status takes exactly one image ID."""
    assert invalid(f"status {IMAGE} now").field == "text"


def test_parse_text_rejects_overlong_text() -> None:
    """Text beyond the limit is refused without being tokenised."""
    assert invalid("x" * 5000).field == "text"


def test_help_text_shows_grammar_and_examples() -> None:
    """The help names every command form, every allowed value and a runnable example."""
    text = help_text("/export")
    for needle in [
        '/export <volume_id> [name="<image name>"]',
        "/export server <server_id>",
        "/export status <image_id>",
        "vhd, zvhd, zvhd2, raw, qcow2",
        "ami, ari, aki, ovf, bare",
        "linux or windows",
        'name="nightly db" format=qcow2 force',
    ]:
        assert needle in text
    examples = [line.strip("`") for line in text.splitlines() if line.startswith("`/export")]
    for example in examples:
        assert not isinstance(parse_text(example.removeprefix("/export ")), HelpCommand)


# --- replies ----------------------------------------------------------------------------------


def test_ephemeral_escapes_text() -> None:
    """Plain text is escaped so <!channel> or <url|x> in user input never pings or links."""
    assert ephemeral("a <!channel> & b") == {
        "response_type": "ephemeral",
        "text": "a &lt;!channel&gt; &amp; b",
    }


def test_ephemeral_passes_blocks() -> None:
    """Blocks are attached as given."""
    blocks = [{"type": "divider"}]
    assert ephemeral("x", blocks)["blocks"] == blocks


def test_escape_ampersand_first() -> None:
    """& is escaped before < and >, so entities are not double-escaped wrongly."""
    assert escape("<&>") == "&lt;&amp;&gt;"


def result(kind: str, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": f"evs.export.{kind}",
        "subject": data.get("volume_id"),
        "data": {"trigger": "chat", "correlation_id": "c1", **data},
    }


def texts(message: dict[str, Any]) -> list[str]:
    return [block["text"]["text"] for block in message["blocks"]]


def test_results_message_names_volume_image_and_status() -> None:
    """An accepted export names the volume, the image ID, the name and the status."""
    message = results_message(
        [
            result(
                "accepted",
                volume_id=VOLUME,
                image_id=IMAGE,
                image_name="nightly db",
                status="queued",
            )
        ]
    )
    assert message["response_type"] == "ephemeral"
    assert message["text"] == "1 export result: 1 accepted."
    summary, line = texts(message)
    assert summary == message["text"]
    assert VOLUME in line and IMAGE in line and "`nightly db`" in line and "`queued`" in line
    assert all(block["type"] == "section" for block in message["blocks"])
    assert all(block["text"]["type"] == "mrkdwn" for block in message["blocks"])


def test_results_message_explains_each_outcome() -> None:
    """Rejections show the error message; skips and deferrals are put in plain words."""
    events = [
        result("rejected", volume_id=VOLUME, error={"code": "X", "message": "volume not found"}),
        result("failed", volume_id=VOLUME, error={"code": "Y", "message": "timed out"}),
        result("skipped", volume_id=VOLUME, image_name="n1", reason="duplicate"),
        result("skipped", volume_id=VOLUME, reason="busy"),
        result("deferred", volume_id=VOLUME),
    ]
    message = results_message(events)
    assert message["text"] == ("5 export results: 1 rejected, 1 failed, 2 skipped, 1 deferred.")
    lines = texts(message)[1:]
    assert "*Rejected*" in lines[0] and "volume not found" in lines[0]
    assert "*Failed*" in lines[1] and "timed out" in lines[1]
    assert "already exists" in lines[2] and "`n1`" in lines[2]
    assert "already being exported" in lines[3]
    assert "follow-up" in lines[4]


def test_results_message_escapes_user_text() -> None:
    """Error messages and names are escaped, and backticks cannot break code spans."""
    events = [
        result(
            "rejected",
            volume_id="<!here>",
            image_name="a`b",
            error={"message": "bad <@U1> & <https://x|y>"},
        )
    ]
    line = texts(results_message(events))[1]
    assert "<" not in line and ">" not in line
    assert "&lt;@U1&gt; &amp; &lt;https://x|y&gt;" in line
    assert "`a'b`" in line


def test_results_message_tolerates_missing_fields() -> None:
    """Events without data, volume or error still render a line."""
    events: list[dict[str, Any]] = [
        {"type": "evs.export.rejected"},
        {"type": "evs.export.completed", "data": {"image_id": IMAGE}},
        {"type": "something.else", "data": "not a dict"},
    ]
    lines = texts(results_message(events))[1:]
    assert "no reason was given" in lines[0]
    assert IMAGE in lines[1]
    assert len(lines) == 3


def test_results_message_empty() -> None:
    """No events is said in words."""
    assert results_message([])["text"] == "No volumes to export."


@pytest.mark.parametrize("count", [MAX_BLOCKS - 1, MAX_BLOCKS, 120])
def test_results_message_caps_blocks(count: int) -> None:
    """At most 50 blocks; when events do not fit, the last block counts the rest."""
    events = [result("deferred", volume_id=f"v{i}") for i in range(count)]
    message = results_message(events)
    assert len(message["blocks"]) <= MAX_BLOCKS
    if count + 1 > MAX_BLOCKS:
        shown = MAX_BLOCKS - 2
        assert f"and {count - shown} more" in message["blocks"][-1]["text"]["text"]
    else:
        assert len(message["blocks"]) == count + 1
    assert f"{count} export results" in message["text"]


# --- properties -------------------------------------------------------------------------------

_WORDS = st.sampled_from(
    [
        VOLUME,
        SERVER,
        "server",
        "status",
        "help",
        "force",
        "name=",
        'name="',
        "format=",
        "qcow2",
        "container=",
        "os=",
        "'",
        '"',
        "\\",
        "=",
        "{",
        "}",
        "&amp;",
        "“",
        "\u00a0",
        " ",
        "x",
    ]
)


@settings(deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(_WORDS, max_size=12).map("".join)))
def test_parse_text_raises_only_invalid_input(text: str) -> None:
    """On arbitrary text parse_text returns a command or raises InvalidInput with a field."""
    try:
        parse_text(text)
    except InvalidInput as exc:
        assert exc.field in {"text", "name", "format", "container", "os", "force"} | {
            "volume_id",
            "server_id",
            "image_id",
        }
        assert exc.message


@settings(deadline=None)
@given(name=st.text(alphabet=st.sampled_from("abcXYZ019-._ 夜间'\"\\$`"), min_size=1, max_size=40))
def test_parse_text_name_round_trips_through_shell_quoting(name: str) -> None:
    """Any name quoted the shell way comes back exactly, or is refused on the name."""
    try:
        command_ = parse_text(f"{VOLUME} name={shlex.quote(name)}")
    except InvalidInput as exc:
        assert exc.field == "name"
    else:
        assert isinstance(command_, ExportCommand)
        assert command_.image_name == name


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_parse_form_raises_only_invalid_input_on_bytes(body: bytes) -> None:
    """On arbitrary bytes parse_form returns a command or raises InvalidInput."""
    try:
        parse_form(body)
    except InvalidInput as exc:
        assert exc.field


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["user_id", "channel_id", "text", "ssl_check", "team_id", "other"]),
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=80),
    )
)
def test_parse_form_round_trips_encoded_fields(fields: dict[str, str]) -> None:
    """Encoded fields come back as sent, or the missing/overlong field is named."""
    try:
        cmd = parse_form(urlencode(fields).encode())
    except InvalidInput as exc:
        assert exc.field in {"user_id", "channel_id", "team_id", "ssl_check", "body"}
    else:
        assert cmd.text == fields.get("text", "")
        assert cmd.user_id == fields.get("user_id", "")


# --- one table: the help text and the docs ---------------------------------------------------


def test_docs_command_table_is_the_generated_one() -> None:
    """docs/triggers.md holds exactly what ``python -m function.chat --markdown`` prints."""
    docs = (Path(__file__).parents[2] / "docs" / "triggers.md").read_text(encoding="utf-8")
    begin = docs.index("-->\n", docs.index("<!-- chat-commands:")) + len("-->\n")
    end = docs.index("<!-- /chat-commands -->")
    assert docs[begin:end] == markdown()


def test_markdown_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    """The generator prints the table for --markdown and refuses anything else."""
    assert chat_main(["--markdown"]) == 0
    assert capsys.readouterr().out == markdown()
    assert chat_main([]) == 2


def test_every_option_is_in_the_help_and_the_docs_table() -> None:
    """Each option of the table, with its allowed values, shows in the help and the docs."""
    text, table = help_text(), markdown()
    for option in OPTIONS:
        assert f"• {option.key}" in text
        assert f"`{option.key}" in table
        for alias in option.aliases:
            assert f"`{alias}=`" in table
            assert parse_text(f"{VOLUME} {alias}={option.choices[0] if option.choices else 'x'}")
        if option.choices:
            assert listed(option.choices) in table
