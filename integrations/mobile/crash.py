"""Crash signatures: the same crash in any build, on any device, gives the same short digest.

A signature is the exception type plus the top frames of the app's own code,
with what changes between builds and runs stripped: line numbers, memory
addresses, offsets, and the numbering compilers give closures, blocks and
lambdas. Related-issue grouping compares signatures; agents can search the
`crash_<digest>` tag.

Stacks come as the app's crash reporter writes them:

- iOS (symbolicated): `3  MyApp  0x0000000102a3c4d8 ViewController.save() + 120`
- Android / JVM: `at com.acme.app.Foo.bar(Foo.kt:42)`
- JavaScript (React Native: Hermes, JSC, V8): `at save (index.bundle:1:2345)`, `save@x.js:1:2`

Obfuscated (R8 / ProGuard) or unsymbolicated stacks still give a signature,
but it changes with every build: symbolicate before sending when possible.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# How many of the app's own frames make the signature: enough to tell two
# crashes in the same function apart, few enough that a refactor deep in the
# stack does not split a group.
SIGNATURE_FRAMES = 5
# Only the top of a stack is read; crash reporters send hundreds of lines.
MAX_LINES = 400

_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Frame:
    """One stack frame, normalized: a function name, where it lives, and whether it is app code."""

    function: str
    module: str
    own: bool


@dataclass(frozen=True)
class CrashSignature:
    """A crash's grouping key: the normalized text and its short digest."""

    text: str
    digest: str


def signature(
    crash_type: str | None, stack: str | None, message: str | None = None
) -> CrashSignature | None:
    """The crash's signature, or None when there is neither a type nor a stack."""
    stack = stack or ""
    kind = _normalize_type(crash_type) or _type_from_stack(stack)
    frames = parse_frames(stack)
    own = [f for f in frames if f.own] or frames
    lines = [kind or "crash"]
    if own:
        lines += [f.function for f in own[:SIGNATURE_FRAMES]]
    elif message:
        # No usable frame: the message, without the numbers and quoted values
        # that differ per occurrence, is the best remaining tell.
        lines.append(_normalize_message(message))
    elif stack.strip():
        lines += _fallback_lines(stack)
    elif not kind:
        return None
    text = "\n".join(lines)
    return CrashSignature(text=text, digest=hashlib.sha256(text.encode()).hexdigest()[:16])


def parse_frames(stack: str) -> list[Frame]:
    """The frames of a stack in any of the supported formats, top first; other lines skipped."""
    frames = []
    for line in stack.splitlines()[:MAX_LINES]:
        frame = _apple(line) or _jvm(line) or _javascript(line)
        if frame is not None:
            frames.append(frame)
    return frames


# ------------------------------------------------------------------ iOS / macOS

# `3   MyApp   0x0000000102a3c4d8 ViewController.save() + 120 (ViewController.swift:42)`
_APPLE = re.compile(r"^\s*\d+\s+(?P<image>\S(?:.*?\S)?)\s+0x[0-9a-fA-F]+\s+(?P<symbol>.+?)\s*$")
_APPLE_OFFSET = re.compile(r"\s+\+\s+\d+")
# atos and Xcode add "(in MyApp)" and "(File.swift:42)" / "(File.swift)".
_APPLE_SUFFIX = re.compile(r"\s+\((?:in\s+[^)]*|[^()]*\.\w+(?::\d+)?(?::\d+)?)\)")
_SWIFT_NOISE_PREFIXES = ("partial apply for ", "specialized ", "merged ", "@objc ")
_SWIFT_CLOSURE = re.compile(r"\b(closure|implicit closure) #\d+")
_OBJC_BLOCK = re.compile(r"^__\d+(?=[-+]\[)|_block_invoke(?:_\d+)?")

# System images on Apple platforms: their frames are not the app's code.
_APPLE_SYSTEM = frozenset(
    {
        "UIKitCore",
        "UIKit",
        "CoreFoundation",
        "Foundation",
        "GraphicsServices",
        "SwiftUI",
        "SwiftUICore",
        "QuartzCore",
        "CoreGraphics",
        "CFNetwork",
        "WebKit",
        "JavaScriptCore",
        "CoreData",
        "AVFoundation",
        "FrontBoardServices",
        "BaseBoard",
        "RunningBoardServices",
        "AttributeGraph",
        "Combine",
        "dyld",
        "CoreText",
        "ImageIO",
        "MapKit",
        "StoreKit",
        "Security",
        "Network",
        "CoreMedia",
        "MediaToolbox",
        "AppKit",
        "UIFoundation",
        "BackBoardServices",
        "CoreAutoLayout",
        "UIKitServices",
    }
)


def _apple(line: str) -> Frame | None:
    match = _APPLE.match(line)
    if not match:
        return None
    image = match["image"].strip()
    symbol = _APPLE_SUFFIX.sub("", _APPLE_OFFSET.sub("", match["symbol"]))
    if symbol.startswith("0x") or _HEX.fullmatch(symbol.strip()):
        # Unsymbolicated: a load address plus an offset, meaningless in another build.
        return None
    if symbol.startswith(("thunk for ", "reabstraction thunk")):
        return None  # compiler glue, never where the bug is
    for prefix in _SWIFT_NOISE_PREFIXES:
        while symbol.startswith(prefix):
            symbol = symbol[len(prefix) :]
    symbol = _SWIFT_CLOSURE.sub(r"\1", symbol)
    symbol = _OBJC_BLOCK.sub(lambda m: "" if m[0].startswith("__") else "_block_invoke", symbol)
    symbol = _clean(symbol)
    own = not (
        image in _APPLE_SYSTEM
        or image.startswith("lib")
        or image.endswith(".dylib")
        or image.startswith("com.apple.")
    )
    return Frame(function=symbol, module=image, own=own) if symbol else None


# ------------------------------------------------------------------ Android / JVM

# `at com.acme.app.Foo.bar(Foo.kt:42)`; no space before the parenthesis (JS frames have one).
_JVM = re.compile(r"^\s*at\s+(?P<function>[\w$.<>/\-]+)\((?P<where>[^)]*)\)")
_JVM_NOISE = (
    (re.compile(r"\$\$ExternalSyntheticLambda\d+"), "$$Lambda"),
    (re.compile(r"\$\$Lambda\$\d+/0x[0-9a-fA-F]+"), "$$Lambda"),
    (re.compile(r"\$\$Lambda\$\d+"), "$$Lambda"),
    (re.compile(r"\$r8\$lambda\$[\w-]+"), "$r8$lambda"),
    (re.compile(r"lambda\$(\w+?)\$\d+"), r"lambda$\1"),
    (re.compile(r"\$lambda[-$]\d+"), "$lambda"),
    (re.compile(r"access\$\d+"), "access$"),
    # Anonymous classes and Kotlin's numbered lambdas: Foo$1, Foo$bar$1.
    (re.compile(r"\$\d+(?=[.$]|$)"), "$"),
)
# Packages of the platform and of common libraries: not the app's code.
_JVM_SYSTEM = (
    "java.", "javax.", "jdk.", "sun.", "kotlin.", "kotlinx.", "android.", "androidx.",
    "com.android.", "dalvik.", "libcore.", "com.google.android.", "com.google.firebase.",
    "okhttp3.", "okio.", "retrofit2.", "io.reactivex.", "rx.", "org.jetbrains.",
    "com.facebook.react.", "com.facebook.hermes.", "com.facebook.jni.", "org.chromium.",
)  # fmt: skip


def _jvm(line: str) -> Frame | None:
    match = _JVM.match(line)
    if not match:
        return None
    function = match["function"]
    # Java 9+ prefixes a module: `java.base/java.lang.Thread.run`.
    if "/" in function:
        function = function.rsplit("/", 1)[1]
    for pattern, replacement in _JVM_NOISE:
        function = pattern.sub(replacement, function)
    package = function.rsplit(".", 2)[0] if function.count(".") >= 2 else function
    own = not function.startswith(_JVM_SYSTEM)
    return Frame(function=function, module=package, own=own)


# ------------------------------------------------------------------ JavaScript

# V8 / Hermes: `at fn (location)` or `at location`; JSC / Firefox: `fn@location`.
_JS_AT = re.compile(r"^\s*at\s+(?:(?P<function>.+?)\s+\((?P<where>.*)\)|(?P<bare>\S+))\s*$")
_JS_AT_SIGN = re.compile(r"^\s*(?P<function>[^@\s]*)@(?P<where>\S.*)$")
_JS_ANON = re.compile(r"\?anon_\d+_|<anonymous>|^anonymous$|^Object\.<anonymous>$")
# React and React Native internals that sit under every handler in a release bundle.
_JS_SYSTEM = frozenset(
    {
        "callFunctionReturnFlushedQueue",
        "__callFunction",
        "__guard",
        "__guardSafe",
        "invokeCallbackAndReturnFlushedQueue",
        "flushedQueue",
        "callTimers",
        "_callTimer",
        "_callReactNativeMicrotasksPass",
        "tryCallOne",
        "tryCallTwo",
        "doResolve",
        "invokeGuardedCallback",
        "invokeGuardedCallbackImpl",
        "invokeGuardedCallbackAndCatchFirstError",
        "executeDispatch",
        "executeDispatchesInOrder",
        "executeDispatchesAndRelease",
        "batchedUpdates",
        "batchedUpdatesImpl",
        "dispatchEvent",
        "dispatchEventForPluginEventSystem",
        "runEventsInBatch",
        "processEventQueue",
        "commitRoot",
        "commitRootImpl",
        "performSyncWorkOnRoot",
        "flushSyncCallbacks",
        "flushPassiveEffects",
        "performUnitOfWork",
        "workLoopSync",
        "renderRootSync",
        "beginWork",
        "callCallback",
        "touchableHandlePress",
        "_performTransitionSideEffects",
        "_receiveSignal",
        "onResponderRelease",
        "apply",
        "call",
        "Promise",
        "setTimeout",
    }
)


def _javascript(line: str) -> Frame | None:
    match = _JS_AT.match(line)
    if match:
        function = match["function"] or ""
        where = match["where"] if match["function"] else match["bare"]
    else:
        match = _JS_AT_SIGN.match(line)
        if not match:
            return None
        function, where = match["function"], match["where"]
    if "[native code]" in where or where == "native":
        return None
    # Hermes: `address at index.android.bundle:1:2345`.
    where = where.removeprefix("address at ")
    function = function.removeprefix("async ").removeprefix("new ")
    if not function or _JS_ANON.search(function):
        return None  # anonymous functions: their only name is a build-specific position
    module = _js_module(where)
    own = "node_modules/" not in where and function.rsplit(".", 1)[-1] not in _JS_SYSTEM
    return Frame(function=_clean(function), module=module, own=own)


def _js_module(where: str) -> str:
    path = where.split("?", 1)[0]
    path = re.sub(r"(:\d+)+$", "", path)
    return path.rsplit("/", 1)[-1]


# ------------------------------------------------------------------ shared


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _HEX.sub("", text)).strip()


def _normalize_type(crash_type: str | None) -> str:
    if not crash_type:
        return ""
    return _clean(crash_type)[:200]


# `java.lang.IllegalStateException: msg`, `Caused by: ...`, `TypeError: msg`.
_TYPE_LINE = re.compile(
    r"^\s*(?:Caused by:\s*)?(?P<type>[\w$.]*(?:Exception|Error|Throwable|Fault)[\w$]*)\b"
)


def _type_from_stack(stack: str) -> str:
    for line in stack.splitlines()[:5]:
        if match := _TYPE_LINE.match(line):
            return match["type"]
    return ""


_MESSAGE_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|\b0x[0-9a-fA-F]+\b|\d+")


def _normalize_message(message: str) -> str:
    return _SPACES.sub(" ", _MESSAGE_VALUES.sub("_", message)).strip()[:200]


def _fallback_lines(stack: str) -> list[str]:
    lines = []
    for line in stack.splitlines()[:MAX_LINES]:
        cleaned = _normalize_message(line)
        if cleaned and cleaned != "_":
            lines.append(cleaned)
        if len(lines) == SIGNATURE_FRAMES:
            break
    return lines
