"""Layer-by-layer quality traceback: is a connectivity difference biology or processing?

``engine.traceback(ws, region)`` compares a region with a reference from L5 down to L1 on
the quality rows the stages recorded; ``report.write_report`` writes it as HTML + JSON.
"""
