// The type every dashboard JSON of the chart must satisfy: Grafana's published Dashboard
// type (@grafana/schema), with the parts it leaves open typed by Grafana's own published
// types too: each panel's options and custom field config by its panel plugin's types,
// each query by the Prometheus data source's query type (@grafana/prometheus).
import type { Dashboard, FieldConfig, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

import type { Prometheus as PrometheusQuery } from './prometheus/dataquery';

// JSON cannot name a TypeScript enum member: accept each string enum's values instead.
type Json<T> = T extends string
  ? string extends T
    ? string
    : `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer Item>
      ? Array<Json<Item>>
      : T extends object
        ? { [Key in keyof T]: Json<T[Key]> }
        : T;

type TypedPanel<Kind extends string, Options, Custom> = Omit<Panel, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
  type: Kind;
  options: Options;
  fieldConfig: { defaults: Omit<FieldConfig, 'custom'> & { custom?: Custom }; overrides: FieldConfigSource['overrides'] };
  targets: PrometheusQuery[];
};

type CaptioningPanel =
  | TypedPanel<'timeseries', TimeSeries.Options, TimeSeries.FieldConfig>
  | TypedPanel<'stat', Stat.Options, Record<string, never>>;

type Row = Omit<RowPanel, 'panels'> & { panels: CaptioningPanel[] };

export type CheckedDashboard = Json<Omit<Dashboard, 'panels'> & { panels: Array<CaptioningPanel | Row> }>;
