"""Entry point of `pulumi preview` / `pulumi up`: builds the stack and exports its outputs."""

import pulumi

from ledger_infra.stack import build, outputs

for name, value in outputs(build()).items():
    pulumi.export(name, value)
