#!/usr/bin/python3
"""Scrape a settled --metrics port and print what it says, parsed by
Prometheus' own text parser (python3-prometheus-client): one sample a
line, `name{label="value",...} value` with the labels sorted, so that a C
test can look lines up. Exits 2 when the text does not parse, 3 when the
port does not answer 200 with the text format's content type."""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    url = sys.argv[1]
    with urllib.request.urlopen(url, timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        if r.status != 200 or not ctype.startswith("text/plain; version=0.0.4"):
            print(f"{url}: {r.status} {ctype}", file=sys.stderr)
            return 3
        text = r.read().decode("utf-8")
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                value = s.value
                shown = repr(int(value)) if value == int(value) else repr(value)
                if labels:
                    print(f"{s.name}{{{labels}}} {shown}")
                else:
                    print(f"{s.name} {shown}")
    except ValueError as e:
        print(f"{url}: does not parse: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
