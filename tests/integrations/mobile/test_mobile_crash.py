"""Crash signatures: same crash in another build or run -> same signature; another crash -> not."""

from __future__ import annotations

from integrations.mobile.crash import parse_frames, signature
from tests import REPO_ROOT

FIXTURES = REPO_ROOT / "integrations" / "mobile" / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


IOS_BUILD_740 = fixture("crash__ios_swift_build_740.txt")

IOS_BUILD_742 = fixture("crash__ios_swift_build_742.txt")

IOS_OTHER_CRASH = fixture("crash__ios_swift_other_crash.txt")

OBJC_BUILD_1 = fixture("crash__ios_objc_block_build_1.txt")

OBJC_BUILD_2 = fixture("crash__ios_objc_block_build_2.txt")

ANDROID_V1 = fixture("crash__android_kotlin_v1.txt")

ANDROID_V2 = fixture("crash__android_kotlin_v2.txt")

ANDROID_OTHER = fixture("crash__android_other_crash.txt")

HERMES_V1 = fixture("crash__react_native_hermes_v1.txt")

HERMES_V2 = fixture("crash__react_native_hermes_v2.txt")

JSC_SAME = fixture("crash__react_native_jsc.txt")


def sig(crash_type: str | None, stack: str) -> str:
    found = signature(crash_type, stack)
    assert found is not None
    return found.digest


def test_ios_same_crash_in_another_build_has_the_same_signature() -> None:
    assert sig("Fatal error", IOS_BUILD_740) == sig("Fatal error", IOS_BUILD_742)


def test_ios_signature_keeps_app_frames_without_noise() -> None:
    found = signature("EXC_BREAKPOINT (SIGTRAP)", IOS_BUILD_740)
    assert found is not None
    assert found.text.splitlines() == [
        "EXC_BREAKPOINT (SIGTRAP)",
        "closure in CartStore.checkout(using:)",
        "closure in CartViewController.payTapped(_:)",
        "CartViewController.payTapped(_:)",
        "CartViewController.payTapped(_:)",
        "main",
    ]


def test_ios_different_crash_has_another_signature() -> None:
    assert sig("Fatal error", IOS_BUILD_740) != sig("Fatal error", IOS_OTHER_CRASH)
    assert sig("Fatal error", IOS_BUILD_740) != sig("EXC_BAD_ACCESS", IOS_BUILD_740)


def test_objc_block_numbering_is_stripped() -> None:
    assert sig("NSInvalidArgumentException", OBJC_BUILD_1) == sig(
        "NSInvalidArgumentException", OBJC_BUILD_2
    )
    found = signature("NSInvalidArgumentException", OBJC_BUILD_1)
    assert found is not None
    assert found.text.splitlines()[1:] == [
        "-[SyncManager uploadPending:]_block_invoke",
        "-[SyncManager uploadPending:]",
    ]


def test_android_same_crash_in_another_build_has_the_same_signature() -> None:
    assert sig(None, ANDROID_V1) == sig(None, ANDROID_V2)
    found = signature(None, ANDROID_V1)
    assert found is not None
    assert found.text.splitlines() == [
        "java.lang.IllegalStateException",
        "com.acme.shop.cart.CartRepository.checkout",
        "com.acme.shop.cart.CartViewModel$pay$.invokeSuspend",
        "com.acme.shop.cart.CartFragment$$Lambda.onClick",
        "com.acme.shop.cart.CartFragment.lambda$onViewCreated",
    ]


def test_android_different_crash_has_another_signature() -> None:
    assert sig(None, ANDROID_V1) != sig(None, ANDROID_OTHER)


def test_react_native_same_crash_in_another_build_has_the_same_signature() -> None:
    assert sig("TypeError", HERMES_V1) == sig("TypeError", HERMES_V2)
    found = signature("TypeError", HERMES_V1)
    assert found is not None
    assert found.text.splitlines() == [
        "TypeError",
        "computeTotals",
        "CheckoutScreen",
        "renderWithHooks",
    ]


def test_jsc_stack_of_the_same_crash_matches_hermes() -> None:
    assert sig("TypeError", JSC_SAME) == sig("TypeError", HERMES_V1)


def test_type_is_read_from_the_stack_when_not_given() -> None:
    found = signature(None, HERMES_V1)
    assert found is not None and found.text.startswith("TypeError\n")


def test_no_frames_falls_back_to_the_message_without_its_values() -> None:
    a = signature("NSRangeException", "", "index 12 beyond bounds [0 .. 3]")
    b = signature("NSRangeException", "", "index 40 beyond bounds [0 .. 7]")
    c = signature("NSRangeException", "", "cannot remove observer 'x' for key path")
    assert a is not None and b is not None and c is not None
    assert a.digest == b.digest != c.digest


def test_unsymbolicated_frames_are_not_used() -> None:
    stack = "0   MyApp   0x0000000102a3c4d8 0x102a00000 + 246984\n"
    assert parse_frames(stack) == []


def test_nothing_to_sign_gives_none() -> None:
    assert signature(None, None) is None
    assert signature("", "") is None


def test_text_only_stack_still_signs_its_first_lines() -> None:
    a = signature(None, "Something odd happened at step 4\nwhile syncing item 1234")
    b = signature(None, "Something odd happened at step 9\nwhile syncing item 88")
    assert a is not None and b is not None and a.digest == b.digest
