"""What the reference usage's jobs call: they record each fire."""

from tests.testapp.jobs import record_fire


class CampaignStatusChecker:
    @staticmethod
    def check_campaign_status():
        record_fire()

    @staticmethod
    def check_funding_success():
        record_fire()
