"""The Slack Web API sandbox, driven by the real slack_sdk WebClient."""

from __future__ import annotations

import json

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from integrations.sandbox import SlackSandbox
from integrations.sandbox.slack import SlackError

MODAL = {
    "type": "modal",
    "callback_id": "feedback",
    "title": {"type": "plain_text", "text": "Send feedback"},
    "blocks": [{"type": "input", "block_id": "text", "element": {"type": "plain_text_input"}}],
}


@pytest.fixture
def slack(slack_sandbox: SlackSandbox, env: dict[str, str]) -> WebClient:
    return WebClient(env["SLACK_BOT_TOKEN"], base_url=slack_sandbox.api_url)


def test_auth_test_answers_as_the_bot(slack: WebClient) -> None:
    assert slack.auth_test()["user_id"] == "U0SANDBOT"


def test_a_bad_token_is_invalid_auth(slack_sandbox: SlackSandbox) -> None:
    with pytest.raises(SlackApiError) as raised:
        WebClient("xoxb-wrong", base_url=slack_sandbox.api_url).auth_test()
    assert raised.value.response["error"] == "invalid_auth"


def test_post_thread_and_update_a_message(slack: WebClient, slack_sandbox: SlackSandbox) -> None:
    posted = slack.chat_postMessage(channel="#eng-mobile", text="New issue: export broken")
    channel, ts = posted["channel"], posted["ts"]
    assert channel.startswith("C")
    assert posted["message"]["text"] == "New issue: export broken"
    reply = slack.chat_postMessage(channel=channel, thread_ts=ts, text="Another report")
    assert reply["message"]["thread_ts"] == ts
    updated = slack.chat_update(channel=channel, ts=ts, text="New issue: export broken (2)")
    assert updated["message"]["edited"]["user"] == "U0SANDBOT"

    # A channel name and its id reach the same channel.
    texts = [m.text for m in slack_sandbox.channel_messages("#eng-mobile")]
    assert texts == ["New issue: export broken (2)", "Another report"]
    assert slack_sandbox.channel_messages(channel)[0].history == ["New issue: export broken"]


def test_a_channel_exists_before_anything_is_posted_to_it(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    # As in Slack: a post to a name the workspace lacks is channel_not_found, and the
    # channel list does not grow from it.
    for post in (
        lambda: slack.chat_postMessage(channel="#nowhere", text="card"),
        lambda: slack.chat_update(channel="#nowhere", ts="1.000001", text="card"),
        lambda: slack.chat_postEphemeral(channel="#nowhere", user="U0REPORTER", text="hi"),
    ):
        with pytest.raises(SlackApiError) as raised:
            post()
        assert raised.value.response["error"] == "channel_not_found"
    listed = [c["name"] for c in slack.conversations_list()["channels"]]
    assert "nowhere" not in listed and "eng" in listed  # the fixture's workspace has #eng
    assert slack_sandbox.channel_messages("#nowhere") == []
    with pytest.raises(SlackError, match="channel_not_found"):
        slack_sandbox.channel_id("#nowhere")

    [made] = slack_sandbox.create_channels("#nowhere")
    assert slack.chat_postMessage(channel="#nowhere", text="card")["channel"] == made
    assert slack_sandbox.create_channels("nowhere") == [made]  # made once
    # Direct messages by user id need no channel.
    assert slack.chat_postMessage(channel="U0REPORTER", text="hi")["channel"] == "D0REPORTER"


def test_channels_are_made_over_the_control_endpoint(slack_sandbox: SlackSandbox) -> None:
    made = requests.post(
        f"{slack_sandbox.url}/__sandbox/channels", json={"names": ["#eng-payments"]}, timeout=5
    ).json()["channels"]
    assert made == {"#eng-payments": slack_sandbox.channel_id("#eng-payments")}
    listed = requests.get(f"{slack_sandbox.url}/__sandbox/channels", timeout=5).json()
    assert listed["channels"]["eng-payments"] == made["#eng-payments"]


def test_updating_a_message_that_does_not_exist_fails(slack: WebClient) -> None:
    with pytest.raises(SlackApiError) as raised:
        slack.chat_update(channel="C0NOPE", ts="1.000001", text="x")
    assert raised.value.response["error"] == "message_not_found"


def test_a_message_needs_text_or_blocks(slack_sandbox: SlackSandbox, env: dict[str, str]) -> None:
    # slack_sdk warns before sending such a call; raw HTTP shows what Slack answers.
    answer = requests.post(
        f"{slack_sandbox.api_url}chat.postMessage",
        data={"channel": "#eng"},
        headers={"Authorization": f"Bearer {env['SLACK_BOT_TOKEN']}"},
        timeout=5,
    )
    assert answer.json() == {"ok": False, "error": "no_text"}


def test_permalink_ephemeral_and_direct_message(slack: WebClient) -> None:
    posted = slack.chat_postMessage(channel="C0ENG", text="hi")
    link = slack.chat_getPermalink(channel="C0ENG", message_ts=posted["ts"])["permalink"]
    assert requests.get(link, timeout=5).status_code == 200
    assert slack.chat_postEphemeral(channel="C0ENG", user="U0REPORTER", text="psst")["message_ts"]
    dm = slack.conversations_open(users="U0REPORTER")["channel"]["id"]
    assert dm.startswith("D")


def test_a_view_opens_once_per_trigger_and_updates(slack: WebClient) -> None:
    opened = slack.views_open(trigger_id="123.456.abc", view=MODAL)["view"]
    assert opened["id"].startswith("V")
    assert opened["callback_id"] == "feedback"
    with pytest.raises(SlackApiError) as raised:
        slack.views_open(trigger_id="123.456.abc", view=MODAL)
    assert raised.value.response["error"] == "exchanged_trigger_id"

    thanks = {**MODAL, "title": {"type": "plain_text", "text": "Thanks"}}
    updated = slack.views_update(view_id=opened["id"], view=thanks)["view"]
    assert updated["id"] == opened["id"]
    assert updated["title"]["text"] == "Thanks"


def test_users_info_has_the_email_of_known_users(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    assert slack.users_info(user="U0REPORTER")["user"]["profile"]["email"] == "ada@example.com"
    with pytest.raises(SlackApiError) as raised:
        slack.users_info(user="U0NOBODY")
    assert raised.value.response["error"] == "user_not_found"
    slack_sandbox.add_user("U0NEW", "new", "New Person", "new@example.com")
    assert slack.users_info(user="U0NEW")["user"]["profile"]["email"] == "new@example.com"


def test_injected_429_raises_with_retry_after_then_clears(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    slack_sandbox.rate_limit("chat.postMessage", retry_after=30, count=1)
    with pytest.raises(SlackApiError) as raised:
        slack.chat_postMessage(channel="#eng", text="first")
    response = raised.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"
    assert response["error"] == "ratelimited"
    # Other methods are unaffected, and the limit was for one call.
    assert slack.auth_test()["ok"]
    assert slack.chat_postMessage(channel="#eng", text="second")["ok"]
    assert [m.text for m in slack_sandbox.channel_messages("#eng")] == ["second"]


def test_429_injection_over_the_control_endpoint(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    control = f"{slack_sandbox.url}/__sandbox/ratelimit"
    requests.post(control, json={"method": "views.open", "retry_after": 2}, timeout=5)
    for trigger in ("t1", "t2"):
        with pytest.raises(SlackApiError):
            slack.views_open(trigger_id=trigger, view=MODAL)
    requests.post(control, json={}, timeout=5)
    assert slack.views_open(trigger_id="t3", view=MODAL)["ok"]


def test_every_call_is_recorded_and_queryable(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    slack.auth_test()
    slack.chat_postMessage(channel="#eng", text="one")
    slack.chat_postMessage(channel="#eng", text="two", blocks=[{"type": "divider"}])
    calls = requests.get(
        f"{slack_sandbox.url}/__sandbox/calls", params={"method": "chat.postMessage"}, timeout=5
    ).json()["calls"]
    assert [c["args"]["text"] for c in calls] == ["one", "two"]
    assert calls[1]["args"]["blocks"] == [{"type": "divider"}]
    assert [c.method for c in slack_sandbox.calls()] == [
        "auth.test",
        "chat.postMessage",
        "chat.postMessage",
    ]


def test_response_url_posts_are_recorded(slack_sandbox: SlackSandbox) -> None:
    url = slack_sandbox.response_url("cmd-1")
    answer = requests.post(url, json={"text": "Ticket #12 filed", "response_type": "ephemeral"})
    assert answer.status_code == 200
    [recorded] = requests.get(f"{slack_sandbox.url}/__sandbox/responses", timeout=5).json()[
        "responses"
    ]
    assert recorded["name"] == "cmd-1"
    assert recorded["body"]["text"] == "Ticket #12 filed"


def test_the_page_lists_messages_by_channel_and_thread(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    first = slack.chat_postMessage(channel="#eng-web", text="Export broken")
    slack.chat_postMessage(channel="#eng-web", thread_ts=first["ts"], text="Seen by 3 people")
    slack.chat_update(channel=first["channel"], ts=first["ts"], text="Export broken <fixed>")
    slack.chat_postEphemeral(channel="C0ENG", user="U0REPORTER", text="Only you can see this")
    requests.post(slack_sandbox.response_url("r1"), json={"text": "Ticket #7 filed"}, timeout=5)

    page = requests.get(f"{slack_sandbox.url}/", timeout=5).text
    assert "#eng-web" in page
    assert "Export broken &lt;fixed&gt;" in page
    assert "Export broken\n</div>" not in page  # the old text is not shown
    assert page.index("Export broken &lt;fixed&gt;") < page.index("Seen by 3 people")
    assert "Only you can see this" in page
    assert "Ticket #7 filed" in page


def test_an_outage_and_server_errors_reach_the_client(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    faults = f"{slack_sandbox.url}/__sandbox/faults"
    requests.post(faults, json={"error_rate": 1.0, "error_status": 500}, timeout=5)
    with pytest.raises(SlackApiError) as raised:
        slack.chat_postMessage(channel="#eng", text="x")
    assert raised.value.response.status_code == 500
    requests.post(faults, json={"error_rate": 0, "down": True}, timeout=5)
    with pytest.raises(SlackApiError) as down:
        slack.auth_test()
    assert down.value.response.status_code == 503
    requests.post(faults, json={"down": False}, timeout=5)
    assert slack.auth_test()["ok"]
    assert slack_sandbox.channel_messages("#eng") == []


# ---------------------------------------------------------------- threads, files, shared channels


def test_a_thread_is_read_page_by_page_with_its_cursor(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    parent = slack_sandbox.say("#support", "U0REPORTER", "Export hangs")
    for n in range(4):
        slack_sandbox.say("#support", "U0SUPPORT", f"reply {n}", thread_ts=parent.ts)
    texts, cursor = [], None
    while True:
        page = slack.conversations_replies(
            channel=parent.channel, ts=parent.ts, limit=2, cursor=cursor
        )
        texts += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert texts == ["Export hangs", "reply 0", "reply 1", "reply 2", "reply 3"]
    first = slack.conversations_replies(channel=parent.channel, ts=parent.ts)["messages"][0]
    assert first["reply_count"] == 4 and "bot_id" not in first
    with pytest.raises(SlackApiError) as raised:
        slack.conversations_replies(channel=parent.channel, ts="1.000000")
    assert raised.value.response["error"] == "thread_not_found"


def test_a_deleted_parent_stays_as_a_tombstone_and_a_lone_message_goes(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    parent = slack_sandbox.say("#support", "U0REPORTER", "secret")
    slack_sandbox.say("#support", "U0SUPPORT", "ok", thread_ts=parent.ts)
    lone = slack_sandbox.say("#support", "U0REPORTER", "typo")
    slack_sandbox.delete_message("#support", parent.ts)
    slack_sandbox.delete_message("#support", lone.ts)
    first = slack.conversations_replies(channel=parent.channel, ts=parent.ts)["messages"][0]
    assert first["subtype"] == "tombstone" and "secret" not in json.dumps(first)
    with pytest.raises(SlackApiError):
        slack.conversations_replies(channel=parent.channel, ts=lone.ts)


def test_files_download_only_with_the_bot_token(
    slack_sandbox: SlackSandbox, env: dict[str, str]
) -> None:
    file = slack_sandbox.add_file("log.txt", b"line 1\n", "text/plain")
    url = file["url_private_download"]
    bearer = {"Authorization": f"Bearer {env['SLACK_BOT_TOKEN']}"}
    assert requests.get(url, headers=bearer, timeout=5).content == b"line 1\n"
    # Without the token Slack redirects to its sign-in page, as the real file host does.
    refused = requests.get(url, timeout=5, allow_redirects=False)
    assert refused.status_code == 302
    slack_sandbox.remove_file_bytes(file["id"])
    assert requests.get(url, headers=bearer, timeout=5).status_code == 404


def test_shared_channels_and_external_users(slack: WebClient, slack_sandbox: SlackSandbox) -> None:
    shared = slack_sandbox.share_channel("#acme-support", "T0ACME")
    info = slack.conversations_info(channel=shared)["channel"]
    assert info["is_ext_shared"] is True and "T0ACME" in info["shared_team_ids"]
    assert slack.conversations_info(channel="C0GENERAL")["channel"]["is_ext_shared"] is False
    listed = {c["name"]: c["id"] for c in slack.conversations_list()["channels"]}
    assert listed["acme-support"] == shared

    slack_sandbox.add_user("W0KIM", "kim", "Kim Customer", None, team="T0ACME")
    user = slack.users_info(user="W0KIM")["user"]
    assert user["team_id"] == "T0ACME" and "email" not in user["profile"]
    said = slack_sandbox.say(shared, "W0KIM", "Hello from Acme")
    [message] = slack.conversations_replies(channel=shared, ts=said.ts)["messages"]
    assert message["user_team"] == "T0ACME"


def test_the_bot_outside_a_channel_cannot_read_it(
    slack: WebClient, slack_sandbox: SlackSandbox
) -> None:
    said = slack_sandbox.say("#private-team", "U0REPORTER", "hi")
    slack_sandbox.remove_bot("#private-team")
    with pytest.raises(SlackApiError) as raised:
        slack.conversations_replies(channel=said.channel, ts=said.ts)
    assert raised.value.response["error"] == "not_in_channel"


def test_a_rate_limit_can_start_part_way(slack: WebClient, slack_sandbox: SlackSandbox) -> None:
    said = slack_sandbox.say("#support", "U0REPORTER", "hi")
    slack_sandbox.rate_limit("conversations.replies", retry_after=7, count=1, after=1)
    assert slack.conversations_replies(channel=said.channel, ts=said.ts)["ok"]
    with pytest.raises(SlackApiError) as raised:
        slack.conversations_replies(channel=said.channel, ts=said.ts)
    assert raised.value.response.headers["Retry-After"] == "7"
    assert slack.conversations_replies(channel=said.channel, ts=said.ts)["ok"]
