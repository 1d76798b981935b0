{# The source table is loaded by the seed: this reference makes dbt build the seed first. #}
-- depends_on: {{ ref('raw_customers') }}

select
    customer_id,
    lower(email) as email,
    lower(split_part(email, '@', 2)) as email_domain,
    nullif(trim(country), '') as country,
    signed_up_at
from {{ source('shop', 'customers') }}
