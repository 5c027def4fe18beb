"""Fault and parameter campaigns: many independent simulations, each in its
own process, on a local pool or a Dask cluster, judged run by run and kept
in a SQLite database (docs/campaigns.md).

    from pciesim import campaign
    s = campaign.run_campaign("configs/campaigns/smoke.yaml", "out", workers=2)
    print(campaign.report("out"))
"""
from .execute import build_hash, run_campaign, simulator_binary
from .report import load, report, summary
from .runner import OUTCOMES, classify, execute
from .spec import Campaign, CampaignError, Run, load_campaign

__all__ = ["run_campaign", "report", "summary", "load", "load_campaign", "Campaign", "Run",
           "CampaignError", "OUTCOMES", "classify", "execute", "simulator_binary", "build_hash"]
