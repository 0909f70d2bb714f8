"""Assembles the stack; `__main__.py` and the tests both call `build()`."""

from dataclasses import dataclass

import pulumi_aws as aws

from . import alarms, api, database, iam, lambdas, network, tables
from .settings import Settings, load


@dataclass
class Stack:
    settings: Settings
    network: network.Network
    database: aws.rds.Instance
    tables: tables.Tables
    lambdas: lambdas.Lambdas
    api: api.Api
    api_task_role: aws.iam.Role
    alarms: list


def build() -> Stack:
    settings = load()
    created_network = network.create()
    created_database = database.create(settings, created_network)
    created_tables = tables.create(settings)
    created_lambdas = lambdas.create(settings, created_tables, created_network)
    created_api = api.create(settings, created_lambdas.query)
    api_task_role = iam.api_task_role(created_tables)
    created_alarms = alarms.create(settings, created_lambdas)
    return Stack(settings, created_network, created_database, created_tables, created_lambdas, created_api, api_task_role, created_alarms)
