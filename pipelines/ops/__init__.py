"""Operations: answer KPIs, their drift against a baseline window, and the KPI report over a period."""
