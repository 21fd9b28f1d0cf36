// The lines `capability describe` and `credential describe` add for an owner's endpoint
// override (`aivault endpoint set`): where the provider's hosts are sent, and the tenants
// its wildcard hosts are bound to. Shown only when there is one.

export interface EndpointView {
  endpointOverrides: Record<string, string>;
  tenants: Record<string, readonly string[]>;
}

export function endpointFields(v: EndpointView): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  const redirected = Object.entries(v.endpointOverrides);
  if (redirected.length > 0) fields.push(['redirected', redirected.map(([a, b]) => `${a} -> ${b}`).join(', ')]);
  const tenants = Object.entries(v.tenants);
  if (tenants.length > 0) fields.push(['tenants', tenants.map(([wildcard, hosts]) => `${wildcard}: ${hosts.join(', ')}`).join('; ')]);
  return fields;
}
