"""The ECR repository of the ledger-api image."""

import json

REPOSITORY = "aws:ecr/repository:Repository"


def _repository(built):
    return built.one(REPOSITORY, "ledger-api").inputs


def test_images_are_scanned_on_push(built):
    assert _repository(built)["imageScanningConfiguration"] == {"scanOnPush": True}


def test_tags_are_immutable(built):
    assert _repository(built)["imageTagMutability"] == "IMMUTABLE"


def test_images_are_encrypted_with_kms(built):
    assert _repository(built)["encryptionConfigurations"] == [{"encryptionType": "KMS"}]


def test_the_lifecycle_policy_keeps_the_last_twenty_images(built):
    inputs = built.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "ledger-api").inputs
    rules = json.loads(inputs["policy"])["rules"]
    assert (inputs["repository"], [(r["selection"]["countType"], r["selection"]["countNumber"], r["action"]["type"])
                                   for r in rules]) == ("ledger-api", [("imageCountMoreThan", 20, "expire")])
