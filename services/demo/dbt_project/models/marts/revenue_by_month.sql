select
    cast(date_trunc('month', revenue.revenue_date) as date) as revenue_month,
    plans.tier,
    sum(revenue.charges) as charges,
    {{ cents_to_currency('sum(revenue.amount_cents)') }} as revenue
from {{ ref('fct_daily_revenue') }} as revenue
inner join {{ ref('stg_shop__plans') }} as plans using (plan_id)
group by 1, 2
