-- Every death record delivered up to and including the quarter (deaths accumulate), one
-- row per 记录编号: a record delivered again keeps its latest delivery.
with

delivered as (
    select * from staging.death where quarter <= $quarter
),

final as (
    select * exclude (copy_rank)
    from (
        select *, row_number() over (partition by record_id order by quarter desc, source_file, source_row) as copy_rank
        from delivered
    )
    where copy_rank = 1
)

select * from final
