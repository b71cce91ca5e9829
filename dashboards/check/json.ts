// The JSON form of a Grafana schema type: string enums (e.g. `ThresholdsMode`) become the
// union of their values, since dashboard JSON holds the strings and TypeScript does not
// accept a string literal where a string enum is expected. Everything else is unchanged,
// so object literals keep their excess-property checks.
export type Json<T> = T extends string
  ? `${T}`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;
