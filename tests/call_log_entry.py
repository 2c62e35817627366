"""``promptmill`` with every fake-model and embedded-model call logged: one line per real call,
at its start, to the file named by PROMPTMILL_TEST_CALL_LOG. Tests count a process's true calls
from that file, even when the process is killed."""

from __future__ import annotations

import os
import sys
import threading

from promptmill.cli.app import main
from promptmill.models.base import last_user_text
from promptmill.models.fake import FakeModel
from promptmill.models.llamacpp import LlamaCppModel

_lock = threading.Lock()


def _logged(generate):
    log = os.environ["PROMPTMILL_TEST_CALL_LOG"]

    def generate_and_log(self, request, params):
        line = " ".join(last_user_text(request).split()) + "\n"
        with _lock, open(log, "a", encoding="utf-8") as out:
            out.write(line)  # before the call: a call in flight at a kill is still counted
        return generate(self, request, params)

    return generate_and_log


if __name__ == "__main__":
    FakeModel.generate = _logged(FakeModel.generate)
    LlamaCppModel.generate = _logged(LlamaCppModel.generate)  # batched calls come through it
    sys.argv[0] = "promptmill"
    main()
