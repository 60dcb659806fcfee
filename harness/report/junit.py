"""junit.xml: one testcase per SLA target, so any CI system shows drill results natively."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.metrics.sla import Verdict


def write_junit(summary: dict, path: Path) -> None:
    name = summary["scenario"]["name"]
    verdicts = [Verdict(**v) for v in summary["verdicts"]]
    aborted = summary["run"]["aborted"]
    inconclusive = summary.get("inconclusive") or []
    suite = ET.Element("testsuite", name=f"drill.{name}",
                       tests=str(len(verdicts) + aborted + bool(inconclusive)),
                       failures=str(0 if inconclusive else sum(not v.passed for v in verdicts)),
                       errors=str(int(aborted) + bool(inconclusive)),
                       skipped=str(len(verdicts) if inconclusive else 0),
                       time=f"{summary['run']['elapsed']:.3f}")
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"drill.{name}", name=v.target, time="0")
        if inconclusive:  # neither pass nor fail: the load behind the figure was not as asked
            ET.SubElement(case, "skipped", message="inconclusive: " + "; ".join(inconclusive))
        elif not v.passed:
            ET.SubElement(case, "failure", message=v.sentence(), type="SLA").text = v.sentence()
        else:
            ET.SubElement(case, "system-out").text = v.sentence()
    if inconclusive:
        case = ET.SubElement(suite, "testcase", classname=f"drill.{name}", name="load_generator",
                             time="0")
        ET.SubElement(case, "error", message="inconclusive: " + "; ".join(inconclusive),
                      type="inconclusive").text = "\n".join(inconclusive)
    if aborted:
        case = ET.SubElement(suite, "testcase", classname=f"drill.{name}", name="run", time="0")
        ET.SubElement(case, "error", message=f"aborted: {summary['run']['abort_reason']}",
                      type="aborted")
    root = ET.Element("testsuites", name="hotline-drill")
    root.append(suite)
    ET.indent(root)
    path.write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
