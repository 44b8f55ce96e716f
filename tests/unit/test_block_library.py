"""The seat block's writes are one Redis Functions library named after its source."""

from __future__ import annotations

import re

from store import scripts


def test_a_block_function_is_named_after_the_library_version():
    assert scripts.block_function("hold_batch", "0123456789ab") == "ticketing_hold_batch_0123456789ab"


def test_the_library_registers_exactly_the_functions_the_wrappers_call():
    registered = re.findall(r"redis\.register_function\('([^']+)'", scripts.BLOCK_LIBRARY)
    assert registered == [scripts.block_function(n)
                          for n in ("hold_batch", "free_holds", "transition")]
    assert scripts.BLOCK_LIBRARY.startswith(f"#!lua name=ticketing_block_{scripts.BLOCK_VERSION}\n")
    assert "@VERSION@" not in scripts.BLOCK_LIBRARY


def test_changed_library_code_gets_a_new_version_so_old_and_new_apps_never_mix():
    template = scripts.load_script("block.lua")
    _, version = scripts.block_library(template)
    _, changed = scripts.block_library(template + "\n-- changed\n")
    assert version == scripts.BLOCK_VERSION and re.fullmatch(r"[0-9a-f]{12}", version)
    assert changed != version


def test_the_epoch_guard_and_the_publish_are_written_once():
    source = scripts.BLOCK_LIBRARY
    assert source.count("redis.call('GET', keys[1]) ~= args[1]") == 1
    assert source.count("'XADD'") == 1
