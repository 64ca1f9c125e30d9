-- marts.quarterly_comparison: quarter × county × rule — this quarter's count, last
-- quarter's, and how many are new, persisting and resolved (raised last quarter, not now).
with

this_quarter as (
    select county_code, rule_code, warning_id, status from __warnings where status in ('new', 'persisting')
),

last_quarter as (
    select county_code, rule_code, warning_id from marts.warnings
    where quarter = $previous_quarter and status in ('new', 'persisting')
),

this_counts as (
    select county_code, rule_code,
           count(*) as count_this_quarter,
           count(*) filter (where status = 'new') as count_new,
           count(*) filter (where status = 'persisting') as count_persisting
    from this_quarter group by all
),

last_counts as (
    select county_code, rule_code, count(*) as count_last_quarter,
           count(*) filter (where warning_id not in (select warning_id from this_quarter)) as count_resolved
    from last_quarter group by all
),

final as (
    select
        $quarter as quarter,
        coalesce(t.county_code, l.county_code) as county_code,
        coalesce(t.rule_code, l.rule_code) as rule_code,
        coalesce(t.count_this_quarter, 0)::integer as count_this_quarter,
        coalesce(l.count_last_quarter, 0)::integer as count_last_quarter,
        coalesce(t.count_new, 0)::integer as count_new,
        coalesce(t.count_persisting, 0)::integer as count_persisting,
        coalesce(l.count_resolved, 0)::integer as count_resolved
    from this_counts as t
    full outer join last_counts as l on t.county_code = l.county_code and t.rule_code = l.rule_code
)

select * from final order by county_code, rule_code
