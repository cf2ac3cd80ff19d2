"""How Django shows dates and times wherever a template or the admin formats one itself
(list columns, read-only fields): the back-office's one format, as ``{% load formats %}``
writes it (07 Dec 2026; 07 Dec 2026, 14:05 IST). Input formats stay Django's."""

DATE_FORMAT = "d M Y"
SHORT_DATE_FORMAT = "d M Y"
DATETIME_FORMAT = r"d M Y, H:i \I\S\T"
SHORT_DATETIME_FORMAT = r"d M Y, H:i \I\S\T"
TIME_FORMAT = "H:i"
