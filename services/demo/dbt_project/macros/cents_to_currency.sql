{#- Integer cents to a two-decimal currency amount (the demo shop bills in a single currency). -#}
{% macro cents_to_currency(cents_column) -%}
    cast({{ cents_column }} / 100.0 as decimal(18, 2))
{%- endmacro %}
