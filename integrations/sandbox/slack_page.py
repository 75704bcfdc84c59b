"""The Slack sandbox's page: messages roughly as Slack shows them, the raw JSON one click away.

Block Kit (section text and fields, header, context, actions and their buttons, divider,
image, rich text, input) and mrkdwn (*bold*, _italic_, ~strike~, `code`, ```blocks```,
<links|labels>, <@user> and <#channel> mentions, <!here>) are rendered here, by hand: no
maintained Python library renders Block Kit to HTML (Slack's Block Kit Builder is a web
app), and the page needs only a reading view. Everything from a message is escaped: a
reporter's text reaches it, and may hold HTML. Images are named, not loaded.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flask import render_template_string
from markupsafe import Markup, escape

if TYPE_CHECKING:
    from integrations.sandbox.slack import Message, SlackSandbox

Json = dict[str, Any]

# Slack's control sequences: <@U123>, <#C123|name>, <!here>, <https://x|label>.
_CONTROL = re.compile(r"<([^<>\n]+)>")
_FENCE = re.compile(r"```(.+?)```", re.S)
_CODE = re.compile(r"`([^`\n]+)`")
_STYLES = (
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])"), "b"),
    (re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])"), "i"),
    (re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])"), "s"),
)


class Names:
    """Who and where ids are, for mentions: user id -> name, channel id -> name."""

    def __init__(self, users: dict[str, str], channels: dict[str, str]) -> None:
        self.users = users
        self.channels = channels


def mrkdwn(text: str, names: Names) -> Markup:
    """Slack mrkdwn as HTML, every character of `text` escaped."""
    out: list[str] = []
    position = 0
    for match in _CONTROL.finditer(text):
        out.append(_styled(text[position : match.start()]))
        out.append(_control(match.group(1), names))
        position = match.end()
    out.append(_styled(text[position:]))
    # Each piece is escaped text with tags added around it (_styled, _control).
    return Markup("".join(out))  # noqa: S704


def _styled(segment: str) -> str:
    """Plain mrkdwn (Slack escapes &, < and > in it) as escaped HTML with its styles."""
    plain = segment.replace("\x00", "").replace("&lt;", "<").replace("&gt;", ">")
    safe = str(escape(plain.replace("&amp;", "&")))
    fences: list[str] = []

    def fence(match: re.Match[str]) -> str:
        fences.append(f"<pre>{match.group(1).strip(chr(10))}</pre>")
        return f"\x00{len(fences) - 1}\x00"

    safe = _FENCE.sub(fence, safe)
    safe = _CODE.sub(r"<code>\1</code>", safe)
    for pattern, tag in _STYLES:
        safe = pattern.sub(rf"<{tag}>\1</{tag}>", safe)
    safe = safe.replace("\n", "<br>")
    return re.sub(r"\x00(\d+)\x00", lambda m: fences[int(m.group(1))], safe)


def _control(inner: str, names: Names) -> Markup:
    target, _, label = html.unescape(inner).partition("|")
    mention = Markup('<span class="mention">%s</span>')
    if target.startswith("@") and target[1:2] in ("U", "W"):
        return mention % ("@" + (label or names.users.get(target[1:], target[1:])))
    if target.startswith("#") and target[1:2] in ("C", "G"):
        return mention % ("#" + (label or names.channels.get(target[1:], target[1:])))
    if target.startswith("!"):
        word = target[1:].split("^", 1)[0]
        if word in ("here", "channel", "everyone"):
            return mention % f"@{word}"
        return mention % (label or word)
    if re.match(r"(https?|mailto):", target):
        link = Markup('<a href="%s" rel="noopener noreferrer">%s</a>')
        return link % (target, label or target)
    # Not a control sequence Slack knows: shown as written.
    return escape(f"<{html.unescape(inner)}>")


def text_object(obj: Any, names: Names) -> Markup:
    """A Block Kit text object ({type: mrkdwn | plain_text, text}) as HTML."""
    if isinstance(obj, str):
        return mrkdwn(obj, names)
    if not isinstance(obj, dict):
        return Markup("")
    text = str(obj.get("text") or "")
    if obj.get("type") == "plain_text":
        return escape(text).replace("\n", Markup("<br>"))
    return mrkdwn(text, names)


def blocks_html(blocks: Any, names: Names) -> Markup:
    """A message's blocks as HTML, each in its own <div class="block ...">."""
    if not isinstance(blocks, list):
        return Markup("")
    return Markup("").join(_block(b, names) for b in blocks if isinstance(b, dict))


def _block(block: Json, names: Names) -> Markup:
    kind = str(block.get("type") or "")
    parts: list[Markup] = []
    if kind == "section":
        if block.get("text"):
            parts.append(Markup('<div class="text">%s</div>') % text_object(block["text"], names))
        fields = [f for f in block.get("fields") or [] if isinstance(f, dict)]
        if fields:
            cells = Markup("").join(
                Markup('<div class="field">%s</div>') % text_object(f, names) for f in fields
            )
            parts.append(Markup('<div class="fields">%s</div>') % cells)
        if isinstance(block.get("accessory"), dict):
            accessory = _element(block["accessory"], names)
            parts.append(Markup('<div class="accessory">%s</div>') % accessory)
    elif kind == "header":
        parts.append(Markup("<h4>%s</h4>") % text_object(block.get("text"), names))
    elif kind == "context":
        items = [
            _element(e, names) if e.get("type") == "image" else text_object(e, names)
            for e in block.get("elements") or []
            if isinstance(e, dict)
        ]
        parts.append(Markup(" · ").join(items))
    elif kind == "actions":
        items = [_element(e, names) for e in block.get("elements") or [] if isinstance(e, dict)]
        parts.append(Markup(" ").join(items))
    elif kind == "divider":
        parts.append(Markup("<hr>"))
    elif kind == "image":
        title = block.get("title")
        shown = text_object(title, names) if title else escape(block.get("alt_text") or "")
        parts.append(Markup('<span class="image">[image: %s]</span>') % shown)
    elif kind == "rich_text":
        parts.append(_rich_text(block.get("elements") or [], names))
    elif kind == "input":
        label = text_object(block.get("label"), names)
        parts.append(Markup('<label>%s</label> <span class="control">[input]</span>') % label)
    else:
        parts.append(Markup('<span class="unknown">[%s block]</span>') % kind)
    return Markup('<div class="block %s">%s</div>') % (kind, Markup("").join(parts))


def _element(element: Json, names: Names) -> Markup:
    kind = element.get("type")
    if kind == "button":
        style = element.get("style") if element.get("style") in ("primary", "danger") else ""
        label = text_object(element.get("text"), names)
        if re.match(r"https?://", str(element.get("url") or "")):
            return Markup('<a class="button %s" href="%s" rel="noopener noreferrer">%s</a>') % (
                style,
                element["url"],
                label,
            )
        title = f"action_id {element.get('action_id', '')}, value {element.get('value', '')}"
        return Markup('<button class="%s" type="button" disabled title="%s">%s</button>') % (
            style,
            title,
            label,
        )
    if kind == "image":
        return Markup('<span class="image">[image: %s]</span>') % (element.get("alt_text") or "")
    placeholder = element.get("placeholder")
    shown = text_object(placeholder, names) if placeholder else Markup("")
    return Markup('<span class="control">[%s %s]</span>') % (kind, shown)


def _rich_text(elements: list[Any], names: Names) -> Markup:
    out: list[Markup] = []
    for element in elements:
        if not isinstance(element, dict):
            continue
        if element.get("type") in ("rich_text_section", "rich_text_preformatted"):
            out.append(Markup("<div>%s</div>") % _rich_items(element.get("elements") or [], names))
        elif element.get("type") == "rich_text_quote":
            out.append(
                Markup("<blockquote>%s</blockquote>")
                % _rich_items(element.get("elements") or [], names)
            )
        elif element.get("type") == "rich_text_list":
            items = Markup("").join(
                Markup("<li>%s</li>") % _rich_items(e.get("elements") or [], names)
                for e in element.get("elements") or []
                if isinstance(e, dict)
            )
            out.append(Markup("<ul>%s</ul>") % items)
    return Markup("").join(out)


def _rich_items(items: list[Any], names: Names) -> Markup:
    out: list[Markup] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "text":
            piece = escape(item.get("text") or "").replace("\n", Markup("<br>"))
            style = item.get("style") or {}
            for flag, wrap in (
                ("bold", Markup("<b>%s</b>")),
                ("italic", Markup("<i>%s</i>")),
                ("strike", Markup("<s>%s</s>")),
                ("code", Markup("<code>%s</code>")),
            ):
                if style.get(flag):
                    piece = wrap % piece
            out.append(piece)
        elif kind == "link":
            out.append(_control(f"{item.get('url', '')}|{item.get('text') or ''}", names))
        elif kind == "user":
            out.append(_control(f"@{item.get('user_id', '')}", names))
        elif kind == "channel":
            out.append(_control(f"#{item.get('channel_id', '')}", names))
        elif kind == "emoji":
            out.append(escape(f":{item.get('name', '')}:"))
    return Markup("").join(out)


def body_html(text: str, blocks: Any, names: Names) -> Markup:
    """What a message shows: its blocks, or its text when it has none (as Slack does)."""
    if isinstance(blocks, list) and blocks:
        return blocks_html(blocks, names)
    return Markup('<div class="text">%s</div>') % mrkdwn(text or "", names)


def raw(data: Any) -> str:
    """The JSON behind what is shown, for the page's "JSON" disclosure."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def render_page(sandbox: SlackSandbox) -> str:
    """The whole page: channels with their messages and threads, ephemerals, response_url posts."""
    with sandbox.lock:
        users = {
            uid: str(u.get("real_name") or u.get("name") or uid) for uid, u in sandbox.users.items()
        }
        names = Names(users, {cid: name for name, cid in sandbox.channels.items()})
        ordered = sorted(sandbox.messages.values(), key=lambda m: float(m.ts))
        replies: dict[tuple[str, str], list[Message]] = {}
        for m in ordered:
            if m.thread_ts and m.thread_ts != m.ts:
                replies.setdefault((m.channel, m.thread_ts), []).append(m)
        by_channel: dict[str, list[Json]] = {}
        for m in ordered:
            if m.thread_ts and m.thread_ts != m.ts:
                continue
            by_channel.setdefault(m.channel, []).append(
                {
                    "message": _shown(m, names),
                    "replies": [_shown(r, names) for r in replies.get((m.channel, m.ts), [])],
                }
            )
        ephemeral = [
            {
                **e,
                "body": body_html(e.get("text") or "", e.get("blocks"), names),
                "who": names.users.get(str(e.get("user")), e.get("user")),
                "json": raw(e),
            }
            for e in sandbox.ephemeral
        ]
        posts = [_post(r, names) for r in sandbox.responses]
    return render_template_string(
        PAGE,
        by_channel=by_channel,
        channels=names.channels,
        ephemeral=ephemeral,
        posts=posts,
    )


def _shown(m: Message, names: Names) -> Json:
    deleted = bool(getattr(m, "deleted", False))
    author = "feedback-hub" if getattr(m, "bot", True) else names.users.get(m.user, m.user)
    return {
        "m": m,
        "author": author,
        "bot": getattr(m, "bot", True),
        "deleted": deleted,
        "body": Markup("<i>This message was deleted.</i>")
        if deleted
        else body_html(m.text, m.blocks, names),
        "files": [str(f.get("name") or f.get("title") or "file") for f in getattr(m, "files", [])],
        "json": raw(m.as_slack()),
        "time": _clock(m.ts),
    }


def _clock(ts: str) -> str:
    """A message's time as Slack shows it beside the name (UTC here)."""
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return ts


def _post(post: Json, names: Names) -> Json:
    body = post.get("body")
    flags: list[str] = []
    if isinstance(body, dict):
        shown = body_html(str(body.get("text") or ""), body.get("blocks"), names)
        if body.get("response_type"):
            flags.append(f"response_type {body['response_type']}")
        for flag in ("replace_original", "delete_original"):
            if body.get(flag) in (True, "true"):
                flags.append(flag)
    else:
        shown = Markup('<div class="text">%s</div>') % str(body)
    return {"name": post.get("name"), "body": shown, "flags": flags, "json": raw(body)}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Slack sandbox</title>
<script>
// Live, as an enhancement: reload every 5 seconds, unless a JSON disclosure is open.
setInterval(function () {
  if (!document.querySelector("details[open]")) location.reload();
}, 5000);
</script>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em;max-width:62em;color:#1d1c1d}
h2{font-size:18px;margin-top:1.6em}
.msg{display:flex;gap:.6em;padding:.4em .6em;border-radius:6px}
.msg:hover{background:#f8f8f8}
.avatar{width:32px;height:32px;border-radius:6px;background:#611f69;color:#fff;
 font-weight:700;display:flex;align-items:center;justify-content:center;flex:none}
.person .avatar{background:#1264a3}
.who{font-weight:700}.badge{font-size:11px;background:#eee;border-radius:3px;padding:0 .3em}
.meta{color:#616061;font-size:12px}
.thread{margin-left:2.8em;border-left:2px solid #ddd;padding-left:.6em}
.block{margin:.25em 0}.fields{display:grid;grid-template-columns:1fr 1fr;gap:.3em 1.5em}
.context{color:#616061;font-size:13px}
button,.button{font:inherit;font-size:13px;border:1px solid #bbb;border-radius:4px;
 background:#fff;padding:.15em .7em;color:#1d1c1d;text-decoration:none}
button.primary,.button.primary{background:#007a5a;color:#fff;border-color:#007a5a}
button.danger,.button.danger{background:#e01e5a;color:#fff;border-color:#e01e5a}
.mention{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 .15em}
code{background:#f6f6f6;border:1px solid #e0e0e0;border-radius:3px;padding:0 .2em;
 color:#c01343}
pre{background:#f6f6f6;border:1px solid #e0e0e0;border-radius:4px;padding:.5em;
 white-space:pre-wrap}
blockquote{border-left:3px solid #ddd;margin:0;padding-left:.6em}
details{font-size:12px;color:#616061}details pre{color:#1d1c1d}
.ephemeral{background:#f4f9fc}.control,.image,.unknown{color:#616061}
</style></head><body>
<h1>Slack sandbox</h1>
<p class="meta">What the hub sent, as Slack would show it; "JSON" under each shows what
arrived. This page refreshes every 5 seconds while no JSON is open.</p>
{% macro message(s, in_thread=False) %}{% set m = s.m %}
<div class="msg {{ 'app' if s.bot else 'person' }}"
 id="msg-{{ m.channel }}-{{ m.ts|replace('.', '') }}">
<div class="avatar">{{ s.author[:1]|upper }}</div>
<div class="content">
<div><span class="who">{{ s.author }}</span>{% if s.bot %} <span class="badge">APP</span>{% endif %}
<span class="meta" title="ts {{ m.ts }}">{{ s.time }}{% if m.edited_ts %} · (edited
{%- if m.history %} {{ m.history|length }} times{% endif %}){% endif %}</span></div>
{{ s.body }}
{% for f in s.files %}<div class="meta">📎 {{ f }}</div>{% endfor %}
<details><summary>JSON</summary><pre>{{ s.json }}</pre></details>
</div></div>
{% endmacro %}
{% for channel, threads in by_channel.items() %}
<h2>{{ "#" ~ channels[channel] if channel in channels else channel }}</h2>
{% for item in threads %}
{{ message(item.message) }}
{% if item.replies %}<div class="thread">
<div class="meta">{{ item.replies|length }} {{ "reply" if item.replies|length == 1
 else "replies" }}</div>
{% for r in item.replies %}{{ message(r, True) }}{% endfor %}
</div>{% endif %}
{% endfor %}
{% else %}<p>No messages yet.</p>{% endfor %}
<h2>Ephemeral messages</h2>
{% for e in ephemeral %}<div class="msg ephemeral"><div class="avatar">F</div>
<div class="content"><div class="meta">Only visible to {{ e.who }} in
{{ "#" ~ channels[e.channel] if e.channel in channels else e.channel }}</div>
{{ e.body }}<details><summary>JSON</summary><pre>{{ e.json }}</pre></details></div></div>
{% else %}<p class="meta">None yet.</p>{% endfor %}
<h2>response_url posts</h2>
{% for p in posts %}<div class="msg ephemeral"><div class="avatar">F</div>
<div class="content"><div class="meta">to {{ p.name }}{% for f in p.flags %} · {{ f }}
{%- endfor %}</div>
{{ p.body }}<details><summary>JSON</summary><pre>{{ p.json }}</pre></details></div></div>
{% else %}<p class="meta">None yet.</p>{% endfor %}
</body></html>
"""
