{#- Fails on each combination of `columns` that more than one row holds (a compound key). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
