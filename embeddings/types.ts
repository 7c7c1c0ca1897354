/** What the registry hands the index for an active agent. */
export interface AgentDoc {
  id: string;
  fqdn: string;
  name: string;
  description: string;
  skills: { id: string; name: string; description: string; tags?: string[] }[];
  /** Endpoint protocols, for the filter. */
  protocols: string[];
  /** The zone the agent lives in, e.g. 'agents.internal'. */
  domain: string;
}

export interface SearchFilter {
  domain?: string;
  protocol?: string;
  skillTag?: string;
  /** E.g. active and online; applied before the k cut. */
  allow?: (id: string) => boolean;
}

export interface SearchHit {
  id: string;
  /** Calibrated, in [0, 1]. */
  score: number;
}
