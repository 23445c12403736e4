from django.contrib import admin

from .models import Campaign, Funding


class FundingInline(admin.TabularInline):
    model = Funding
    extra = 0


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "end_date", "goal", "raised_text"]
    list_filter = ["status"]
    search_fields = ["title"]
    inlines = [FundingInline]

    @admin.display(description="raised")
    def raised_text(self, obj):
        return obj.raised()


@admin.register(Funding)
class FundingAdmin(admin.ModelAdmin):
    list_display = ["campaign", "amount"]
    list_select_related = ["campaign"]
