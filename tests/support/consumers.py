"""The export formats read by their consumers' own parsers (tests/export.rs).

    consumers.py bmf SCHEMA FILE   validate BMF JSON against SCHEMA (jsonschema, draft 7)
    consumers.py openmetrics FILE  parse with prometheus_client's OpenMetrics parser
    consumers.py prometheus FILE   parse with prometheus_client's Prometheus text parser
    consumers.py csv FILE          read with Python's csv module (RFC 4180 dialect)

Prints what it read as JSON on stdout; a file the parser refuses exits 1
with the parser's message on stderr.
"""

import csv
import json
import sys


def families(parse, path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for fam in parse(text):
        out.append(
            {
                "name": fam.name,
                "type": fam.type,
                "unit": fam.unit,
                "help": fam.documentation,
                "samples": [
                    {"name": s.name, "labels": s.labels, "value": s.value, "timestamp": s.timestamp}
                    for s in fam.samples
                ],
            }
        )
    return out


def main(argv):
    what = argv[1]
    if what == "bmf":
        import jsonschema

        with open(argv[2], encoding="utf-8") as f:
            schema = json.load(f)
        jsonschema.Draft7Validator.check_schema(schema)
        with open(argv[3], encoding="utf-8") as f:
            doc = json.load(f)
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            for e in errors:
                print(f"{list(e.path)}: {e.message}", file=sys.stderr)
            return 1
        print(json.dumps({"benchmarks": len(doc)}))
    elif what == "openmetrics":
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        print(json.dumps(families(text_string_to_metric_families, argv[2])))
    elif what == "prometheus":
        from prometheus_client.parser import text_string_to_metric_families

        print(json.dumps(families(text_string_to_metric_families, argv[2])))
    elif what == "csv":
        with open(argv[2], encoding="utf-8", newline="") as f:
            print(json.dumps(list(csv.reader(f, strict=True))))
    else:
        print(f"unknown command {what}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # the parser's refusal, with its message
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
