"""Transforms a SAM template into CloudFormation offline, with aws-sam-translator,
and prints the result as JSON on stdout.

Usage: python sam_translate.py infra/template.yaml

Local CodeUri paths become a placeholder S3 location first, as `sam package` would
do with an uploaded artefact: the translator accepts only S3 URIs. Nothing is read
from or sent to AWS; the region comes from AWS_DEFAULT_REGION (default us-east-1).
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The translator asks for the account's managed policies only to resolve
    policy names given without an ARN; the template uses none."""

    def load(self):
        return {}


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(sys.argv[1], encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://placeholder-bucket/" + props["CodeUri"].strip("./").replace("/", "-") + ".zip"
    json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
