"""`run_streamed` on a real child process printing what `rasa train nlu` prints.

Seen in CI: a coloured warning ends with a bare colour reset and a carriage return just
before DIET's bar starts. That reset was taken for a bar, used the first bar's slot, and
a training whose epochs all ran within the next 10 s showed no epoch line at all.
"""

from __future__ import annotations

import io
import re
import sys
import textwrap

from bot.nlu.process import run_streamed

# A warning's colour reset, then tqdm's bar updated within a second, then the close.
RASA_LIKE = textwrap.dedent(r"""
    import sys, time
    err = sys.stderr
    err.write("\x1b[93mUserWarning: only 6 examples\x1b[0m\n\x1b[0m\r"); err.flush()
    for done in range(0, 41, 8):
        err.write(f"\rEpochs: {done * 100 // 40:3d}%|##   | {done}/40 [00:0{done // 8}<00:01,  9.00it/s]"); err.flush()
        time.sleep(0.05)
    err.write("\n"); err.flush()
    print("Your Rasa model is trained")
""")


def _relay(bar_every_s: float) -> list[str]:
    out = io.StringIO()
    rc = run_streamed([sys.executable, "-c", RASA_LIKE], out=out, bar_every_s=bar_every_s)
    assert rc == 0
    return out.getvalue().splitlines()


def test_a_colour_reset_is_not_a_bar_and_the_first_bar_is_always_shown() -> None:
    lines = _relay(10.0)
    bars = [line for line in lines if "Epochs:" in line]
    assert len(bars) == 1 and "0/40 [" in bars[0], lines  # the first bar, then quiet for 10 s
    assert not [line for line in lines if re.fullmatch(r"\[\s*\d+s\]\s*(\x1b\[[0-9;]*m)*\s*", line)], lines
    assert "Your Rasa model is trained" in lines[-1]


def test_a_follower_can_ask_for_every_bar() -> None:
    bars = [line for line in _relay(0.0) if "Epochs:" in line]
    assert [b.split("|")[-1].split("[")[0].strip() for b in bars] == [f"{d}/40" for d in range(0, 41, 8)], bars
