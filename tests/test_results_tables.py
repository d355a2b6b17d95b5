"""scripts/results_tables.py --update: the note's tables are replaced by the printed ones, or nothing changes."""
import pytest

from project_scripts import load_script

NOTE = """# Note

Prose about 1.00.

| model / compensation | chips | 1 day |
| --- | --- | --- |
| custom training, GDC | 10 | 90.00 +- 0.10 |
| direct mapping, GDC | 10 | 80.00 +- 1.00 |

More prose.

| eta | a |
| --- | --- |
| 0 | 1 |
"""

PRINTED = """| eta | a |
| --- | --- |
| 0 | 2 |

| model / compensation | chips | 1 day |
| --- | --- | --- |
| direct mapping, GDC | 20 | 84.43 +- 2.09 |
| custom training, GDC | 10 | 90.63 +- 0.38 |
"""


def test_update_replaces_each_table_by_its_printed_counterpart_and_keeps_the_prose():
    tables = load_script("results_tables")
    out = tables.update_tables(NOTE, PRINTED)
    assert "| direct mapping, GDC | 20 | 84.43 +- 2.09 |" in out and "| 0 | 2 |" in out
    assert "80.00" not in out and "| 0 | 1 |" not in out
    assert "Prose about 1.00." in out and "More prose." in out
    assert out.index("84.43") < out.index("More prose.") < out.index("| 0 | 2 |")  # each table stays in its place
    assert tables.update_tables(out, PRINTED) == out


@pytest.mark.parametrize("note, printed, says", [
    (NOTE.replace("direct mapping, GDC", "direct mapping, AdaBS"), PRINTED, "in the note, not printed"),
    (NOTE.split("More prose.")[0], PRINTED, "printed, not in the note: | eta | a |"),
    (NOTE + "\n| model | test images |\n", PRINTED, "in the note, not printed: | model | test images |"),
])
def test_update_refuses_a_table_without_counterpart(note, printed, says):
    tables = load_script("results_tables")
    with pytest.raises(SystemExit, match="tables not updated") as err:
        tables.update_tables(note, printed)
    assert says in str(err.value)
