import { Type } from '@sinclair/typebox';
import { Ref } from '../api/index.ts';
import { Strict } from '../api/index.ts';
import { formatScaled } from '../fx/index.ts';
import type { FxService } from '../fx/index.ts';
import type { HttpServer } from '../platform/http.ts';
import { DEFAULT_RULES, RULE_NAMES, type RiskService } from '../risk/index.ts';

/**
 * Read-only views for the operator console: the FX reference rates in force with the spread, and the real-time risk
 * rules (the hub's defaults, or one participant's rules with its overrides applied). Changing them stays with the
 * write routes that own them (POST /v1/operator/fx/rates, POST /v1/risk/rules).
 */
const OPERATOR = { auth: 'operator' } as const;
const sec = [{ operator: [] }];
const Rule = Type.Object({}, { additionalProperties: true, description: 'action (step_up or decline), score, enabled, and the rule’s thresholds (windowS, maxCount, multiple, minHistory, minRefEurCents)' });

export function registerOperatorSettingsRoutes(app: HttpServer, deps: { fx: Pick<FxService, 'table' | 'spreadBps'>; risk: Pick<RiskService, 'rules'> }): void {
  app.get(
    '/v1/operator/fx',
    {
      config: OPERATOR,
      schema: {
        tags: ['fx'],
        summary: 'The FX reference rates in force (units per 1 EUR) and the spread charged on conversions',
        description: 'As loaded from the ECB daily document (POST /v1/operator/fx/rates replaces them).',
        security: sec,
        response: {
          200: Type.Object(
            { asOf: Type.Union([Type.String(), Type.Null()], { description: 'null while no reference rates are loaded' }), base: Type.Literal('EUR'), spreadBps: Type.Integer(), rates: Type.Record(Type.String(), Type.String({ description: 'Units per 1 EUR, decimal string' })) },
            { additionalProperties: false },
          ),
        },
      },
    },
    async () => {
      const t = await deps.fx.table();
      return { asOf: t.asOf, base: 'EUR' as const, spreadBps: deps.fx.spreadBps(), rates: Object.fromEntries([...t.perEur.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([c, v]) => [c, formatScaled(v, 6)])) };
    },
  );

  app.get(
    '/v1/operator/risk/rules',
    {
      config: OPERATOR,
      schema: {
        tags: ['risk'],
        summary: 'The real-time risk rules: the hub’s defaults, or those in force for one participant (its overrides applied)',
        description: 'Read only; a participant overrides its own thresholds with POST /v1/risk/rules.',
        security: sec,
        querystring: Strict({ participantId: Type.Optional(Ref('participant', 'A participant (omit for the hub’s defaults)')) }),
        response: { 200: Type.Object({ participantId: Type.Union([Type.String(), Type.Null()]), rules: Type.Record(Type.String(), Rule) }, { additionalProperties: false }) },
      },
    },
    async (request) => {
      const participantId = request.query.participantId ?? null;
      const rules = participantId === null ? Object.fromEntries(RULE_NAMES.map((n) => [n, { ...DEFAULT_RULES[n], enabled: true }])) : await deps.risk.rules(participantId);
      return { participantId, rules };
    },
  );
}
