"""The benchmark suite ``pifed bench`` runs: ``runner`` starts one ``bench_<suite>`` process per
suite (the list is ``pifed.commands.bench.SUITES``), and ``report`` merges what each suite's
``bench_<suite>_report`` renders into results.md, the charts and the targets.
"""
