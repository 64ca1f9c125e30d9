"""Renderings of a published quarter for people: one workbook per township for the
caseworkers (`lists`), and the quarter's comparison report for analysts (`report`).
Both are rebuilt from the warehouse; nothing here decides anything."""
