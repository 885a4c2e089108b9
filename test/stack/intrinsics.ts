import { conditionHolds, type Template } from './package-stack';

// Resolves CloudFormation's intrinsic functions in a template's values the way a deployment would,
// for the values a test chooses (the longest partition and Region names, say), so that the size
// of a policy can be measured as IAM will see it.

export interface Deployment {
  partition: string;
  region: string;
  accountId: string;
  /** Template parameters by name. */
  parameters?: Record<string, string>;
}

/** The ARN (GetAtt Arn) or Ref of a resource, from its type and its name property. */
function resourceValue(template: Template, logicalId: string, attribute: 'Arn' | 'Ref' | string, at: Deployment): string {
  const resource = template.Resources[logicalId];
  if (!resource) throw new Error(`no resource ${logicalId} in the template`);
  const { partition, region, accountId } = at;
  const named = (property: string) => {
    const value = resource.Properties[property];
    return value === undefined ? `${logicalId}-generated-name-0123456789` : String(resolve(template, value, at));
  };
  switch (resource.Type) {
    case 'AWS::SNS::Topic':
      if (attribute === 'Ref' || attribute === 'TopicArn') return `arn:${partition}:sns:${region}:${accountId}:${named('TopicName')}`;
      break;
    case 'AWS::SQS::Queue':
      if (attribute === 'Arn') return `arn:${partition}:sqs:${region}:${accountId}:${named('QueueName')}`;
      if (attribute === 'Ref') return `https://sqs.${region}.amazonaws.com/${accountId}/${named('QueueName')}`;
      if (attribute === 'QueueName') return named('QueueName');
      break;
    case 'AWS::DynamoDB::Table':
      if (attribute === 'Arn') return `arn:${partition}:dynamodb:${region}:${accountId}:table/${named('TableName')}`;
      if (attribute === 'Ref') return named('TableName');
      break;
    case 'AWS::IAM::Role': {
      const name = named('RoleName');
      if (attribute === 'Ref') return name;
      if (attribute === 'Arn') return `arn:${partition}:iam::${accountId}:role${String(resource.Properties.Path ?? '/')}${name}`;
      break;
    }
    case 'AWS::Lambda::Function':
      if (attribute === 'Ref') return named('FunctionName');
      if (attribute === 'Arn') return `arn:${partition}:lambda:${region}:${accountId}:function:${named('FunctionName')}`;
      break;
    default:
      if (attribute === 'Ref') return `${logicalId}-0123456789abcdef`;
  }
  throw new Error(`cannot resolve ${attribute} of ${logicalId} (${resource.Type})`);
}

function pseudo(name: string, at: Deployment): string | undefined {
  const values: Record<string, string> = {
    'AWS::Partition': at.partition,
    'AWS::Region': at.region,
    'AWS::AccountId': at.accountId,
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': 'a-stack-name-of-some-length',
  };
  return values[name];
}

function reference(template: Template, name: string, at: Deployment): string {
  const value = pseudo(name, at) ?? at.parameters?.[name] ?? template.Parameters?.[name]?.Default;
  if (value !== undefined) return value;
  const [logicalId = '', attribute] = name.split('.');
  return resourceValue(template, logicalId, attribute ?? 'Ref', at);
}

/** `value` with every intrinsic function CloudFormation would evaluate evaluated. */
export function resolve(template: Template, value: unknown, at: Deployment): unknown {
  if (Array.isArray(value)) return value.map((item) => resolve(template, item, at)).filter((item) => item !== NO_VALUE);
  if (value === null || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length === 1) {
    const [fn = ''] = keys;
    const args = object[fn];
    switch (fn) {
      case 'Ref':
        return args === 'AWS::NoValue' ? NO_VALUE : reference(template, String(args), at);
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = args as [string, string];
        return resourceValue(template, logicalId, attribute, at);
      }
      case 'Fn::Sub': {
        const [text, variables = {}] = typeof args === 'string' ? [args, {}] : (args as [string, Record<string, unknown>]);
        return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) =>
          name in variables ? String(resolve(template, variables[name], at)) : reference(template, name, at),
        );
      }
      case 'Fn::Join': {
        const [delimiter, items] = args as [string, unknown];
        return (resolve(template, items, at) as unknown[]).map(String).join(delimiter);
      }
      case 'Fn::Split': {
        const [delimiter, text] = args as [string, unknown];
        return String(resolve(template, text, at)).split(delimiter);
      }
      case 'Fn::If': {
        const [name, whenTrue, whenFalse] = args as [string, unknown, unknown];
        return resolve(template, holds(template, name, at) ? whenTrue : whenFalse, at);
      }
      default:
        if (fn.startsWith('Fn::')) throw new Error(`${fn} is not resolved by this test`);
    }
  }
  const entries = Object.entries(object).map(([key, item]) => [key, resolve(template, item, at)] as const);
  return Object.fromEntries(entries.filter(([, item]) => item !== NO_VALUE));
}

const NO_VALUE = Symbol('AWS::NoValue');

/** Whether a condition holds in this deployment (conditions over parameters and pseudo parameters). */
export function holds(template: Template, name: string, at: Deployment): boolean {
  const definition = template.Conditions?.[name];
  if (definition === undefined) throw new Error(`no condition ${name}`);
  const evaluate = (condition: unknown): boolean => {
    const [[fn, args] = []] = Object.entries(condition as Record<string, unknown[]>);
    if (fn === 'Condition') return holds(template, String(args), at);
    if (fn === 'Fn::Equals') {
      const [a, b] = (args as unknown[]).map((arg) => resolve(template, arg, at));
      return a === b;
    }
    if (fn === 'Fn::Not') return !evaluate((args as unknown[])[0]);
    if (fn === 'Fn::And') return (args as unknown[]).every(evaluate);
    if (fn === 'Fn::Or') return (args as unknown[]).some(evaluate);
    return conditionHolds(template, name);
  };
  return evaluate(definition);
}

/** How many characters IAM counts in a policy: its JSON without white space. */
export function policySize(document: unknown): number {
  return JSON.stringify(document).length;
}
