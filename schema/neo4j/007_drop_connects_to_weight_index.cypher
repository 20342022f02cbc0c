// 007: drop the ConnectsTo.weight index. With it the planner answered
// "connections between two sets of bodies with weight >= $minWeight" by scanning every
// ConnectsTo edge through the index instead of starting from the bodies
// (measured: 60-80 ms instead of 10 ms for 200 x 200 bodies on 5k bodies, worse
// as the graph grows). Queries start from bodies; weight is a filter.
DROP INDEX connects_to_weight IF EXISTS;
