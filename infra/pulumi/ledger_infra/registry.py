"""The ECR repository the `ledger-api` image is pushed to: scanned on push, tags immutable (a tag
names one image for ever, so a task definition's image never changes under it), encrypted with KMS,
and a lifecycle policy that keeps the last N images. And a pull-through cache of ECR Public: the
private subnets have no internet path, so the ADOT collector image is pulled as
`<registry>/ecr-public/...` through the ECR endpoints, ECR fetching it from public.ecr.aws itself."""

import json

import pulumi_aws as aws

from .settings import Settings

PUBLIC_REGISTRY = "public.ecr.aws"
PUBLIC_CACHE_PREFIX = "ecr-public"


def through_cache(image: str, registry_host: str) -> str:
    """`public.ecr.aws/<repo>:<tag>` as pulled through this account's cache; any other image as it is."""
    if image.startswith(f"{PUBLIC_REGISTRY}/"):
        return f"{registry_host}/{PUBLIC_CACHE_PREFIX}/{image.removeprefix(PUBLIC_REGISTRY + '/')}"
    return image


def cached_repository_name(image: str) -> str | None:
    """The cache's repository for an ECR Public image (`ecr-public/<repo>`), None for any other."""
    if not image.startswith(f"{PUBLIC_REGISTRY}/"):
        return None
    return f"{PUBLIC_CACHE_PREFIX}/{image.removeprefix(PUBLIC_REGISTRY + '/').split(':', 1)[0].split('@', 1)[0]}"


def lifecycle_policy(keep: int) -> str:
    return json.dumps({
        "rules": [{
            "rulePriority": 1,
            "description": f"Keep the last {keep} images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"},
        }]
    })


def create(settings: Settings) -> aws.ecr.Repository:
    repository = aws.ecr.Repository(
        "ledger-api",
        name="ledger-api",
        image_tag_mutability="IMMUTABLE",
        image_scanning_configuration={"scan_on_push": True},
        # The AWS-managed aws/ecr key: encryption at rest with KMS, and no key policy to keep.
        encryption_configurations=[{"encryption_type": "KMS"}],
    )
    aws.ecr.LifecyclePolicy("ledger-api", repository=repository.name, policy=lifecycle_policy(settings.ecr_keep_images))
    aws.ecr.PullThroughCacheRule(
        "ecr-public", ecr_repository_prefix=PUBLIC_CACHE_PREFIX, upstream_registry_url=PUBLIC_REGISTRY
    )
    return repository
