import json
import logging

from actors.logs import JsonFormatter


def test_error_logs_are_one_json_object_with_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("ticketing.x", logging.ERROR, __file__, 1, "failed %s", ("it",),
                                   sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "error" and entry["logger"] == "ticketing.x"
    assert entry["message"] == "failed it" and "ValueError: boom" in entry["error"]
