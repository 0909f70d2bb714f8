"""The stack's configuration keys: each documented, and the defaults the README promises."""

import os
import re

HERE = os.path.dirname(__file__)


def _read(*parts):
    with open(os.path.join(HERE, *parts), encoding="utf-8") as file:
        return file.read()


def test_every_config_key_the_program_reads_is_in_the_readme():
    keys = set(re.findall(r'config\.(?:get|get_int|get_bool|require|require_secret)\("(\w+)"\)',
                          _read("..", "ledger_infra", "settings.py")))
    readme = _read("..", "..", "..", "README.md")
    section = readme[readme.index("## Infrastructure (Pulumi)"):readme.index("## Configuration\n")]
    assert len(keys) > 20 and sorted(k for k in keys if f"`{k}`" not in section and f"ledger:{k}" not in section) == []


def test_zero_desired_tasks_is_a_value_not_the_default():
    from ledger_infra.settings import _int_or

    class Config:
        def __init__(self, value):
            self.value = value

        def get_int(self, key):
            return self.value

    assert (_int_or(Config(0), "desiredCount", 2), _int_or(Config(None), "desiredCount", 2)) == (0, 2)


def test_the_default_allowed_cidrs_and_desired_count_apply(built):
    assert (built.stack.settings.allowed_cidrs, built.stack.settings.desired_count) == (["0.0.0.0/0"], 2)
