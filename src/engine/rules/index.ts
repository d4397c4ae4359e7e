/** The rule table: a mapped type over every primitive, so a primitive without rules does not compile. */
import { batchnormRules } from './batchnorm.js';
import { elementwiseRules } from './elementwise.js';
import { linalgRules } from './linalg.js';
import { structuralRules } from './structural.js';
import type { RuleTable } from './types.js';

export const RULES: RuleTable = { ...elementwiseRules, ...batchnormRules, ...structuralRules, ...linalgRules };
