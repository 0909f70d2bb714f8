"""Entry point of `pulumi preview` / `pulumi up`: builds the stack and exports its outputs."""

import pulumi

from ledger_infra.stack import build

stack = build()
pulumi.export("api_url", stack.api.stage.invoke_url)
pulumi.export("events_table", stack.tables.events.name)
pulumi.export("events_stream_arn", stack.tables.events.stream_arn)
pulumi.export("projection_dead_letter_queue_url", stack.lambdas.dead_letters.url)
