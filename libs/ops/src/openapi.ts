import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

/**
 * The app's OpenAPI 3 document, generated from its controllers: each route's access rule (bearer token, 401,
 * 403, 429, 503), its body and query parameters from the zod schemas that validate them (and the 400 that
 * follows), and the answers the handler declares. Served at `/openapi.json`, browsable at `/docs`.
 */
export function setupOpenApi(app: INestApplication, title: string, description: string): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle(title)
    .setDescription(description)
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'a client token (npm run fleet -- token new)' })
    .build();
  const document = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json', raw: ['json'], customSiteTitle: title });
  return document;
}
