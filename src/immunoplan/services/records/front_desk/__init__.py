"""The front desk: the late-shot list (who is due or late on a clinic date, how late, and what the missed-dose
rule will do to their next dose), reminders (.ics per patient or for the clinic, CSV for a mail merge) and
no-shows recorded as such.

Modules: `late_list` (`late_shot_list`, `late_shot_csv`), `no_shows` (`NoShowIn`, `record_no_show`),
`reminders` (`reminder_rows`, `reminders_ics`, `reminders_csv`), `csv_cells` (CSV cells neutralised against
spreadsheet formulas). Due/late is `immunoplan.clinical.immunotherapy.due_status`; the next dose is the
injection engine's (`immunoplan.services.records.injections.next_injection_view`): nothing here decides
a dose.
"""

from immunoplan.services.records.front_desk.csv_cells import FORMULA_STARTS, csv_text, neutralise_cell
from immunoplan.services.records.front_desk.late_list import (
    CSV_COLUMNS,
    MAX_ROWS,
    LateListQuery,
    late_shot_csv,
    late_shot_list,
    no_show_row,
    product_choices,
    product_ids,
)
from immunoplan.services.records.front_desk.no_shows import NoShowIn, record_no_show
from immunoplan.services.records.front_desk.reminders import (
    DEFAULT_DAYS_AHEAD,
    REMINDER_COLUMNS,
    reminder_rows,
    reminders_csv,
    reminders_csv_text,
    reminders_ics,
)

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_DAYS_AHEAD",
    "FORMULA_STARTS",
    "MAX_ROWS",
    "REMINDER_COLUMNS",
    "LateListQuery",
    "NoShowIn",
    "csv_text",
    "late_shot_csv",
    "late_shot_list",
    "neutralise_cell",
    "no_show_row",
    "product_choices",
    "product_ids",
    "record_no_show",
    "reminder_rows",
    "reminders_csv",
    "reminders_csv_text",
    "reminders_ics",
]
